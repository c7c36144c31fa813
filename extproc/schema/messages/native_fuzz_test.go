package messages

import (
	"bytes"
	"testing"
)

// FuzzNativeStream: any upstream bytes, split anywhere, give no panic and
// the same output, usage and end as the whole input.
func FuzzNativeStream(f *testing.F) {
	f.Add([]byte(nativeFlow), 7)
	f.Add([]byte("event: message_start\r\ndata: {\"message\":{\"model\":\"x\"}}\r\n\r\n"), 3)
	f.Add([]byte("data: {\"type\":\"message_start\",\"message\":{\"model\":1}}\n\ndata:x\ndata:y\n\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		whole := NewNativeStream("my-claude")
		out, errW := whole.Translate(nil, in, true)
		if cut < 0 {
			cut = -cut
		}
		if len(in) > 0 {
			cut %= len(in) + 1
		} else {
			cut = 0
		}
		split := NewNativeStream("my-claude")
		got, errS := split.Translate(nil, in[:cut], false)
		if errS == nil {
			got, errS = split.Translate(got, in[cut:], true)
		}
		if (errW == nil) != (errS == nil) || !bytes.Equal(out, got) || whole.Usage() != split.Usage() {
			t.Fatalf("split at %d differs: %v / %v\n%q\n%q", cut, errW, errS, out, got)
		}
		u := whole.Usage()
		if u.PromptTokens < 0 || u.CompletionTokens < 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Fatalf("usage %+v", u)
		}
		_, _ = NewNativeStream("m").AppendEvent(nil, in)
	})
}

// FuzzNativeResponse: any body gives no panic, and a rewritten body is
// still JSON with the client's model.
func FuzzNativeResponse(f *testing.F) {
	f.Add([]byte(`{"type":"message","model":"claude-x","usage":{"input_tokens":3,"output_tokens":4}}`))
	f.Add([]byte(`{"model":{"nested":1}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		out, u, err := NativeResponse(body, "my-claude")
		if !bytes.Equal(body, orig) {
			t.Fatal("body modified")
		}
		if err == nil && out != nil {
			if _, _, err := NativeResponse(out, "my-claude"); err != nil {
				t.Fatalf("rewritten body is not JSON: %v\n%s", err, out)
			}
		}
		if u.TotalTokens != u.PromptTokens+u.CompletionTokens {
			t.Fatalf("usage %+v", u)
		}
	})
}

// FuzzNativeRequest: any client body gives no panic in the stored-state
// check and the rewrite, and a rewritten body is JSON.
func FuzzNativeRequest(f *testing.F) {
	f.Add([]byte(`{"model":"a","stream":true,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}`))
	f.Add([]byte(`{"contain\u0065r":1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		_ = NativeCheckStoredState(body)
		for _, e := range []NativeEdit{{Model: "c"}, {DropModel: true, DropStream: true, Version: "v", Beta: "a,b"}} {
			out, err := NativeRewrite(body, &e)
			if err == nil && out != nil {
				if _, err := NativeRewrite(out, &NativeEdit{}); err != nil {
					t.Fatalf("rewritten body is not JSON: %v\n%s", err, out)
				}
			}
		}
		if !bytes.Equal(body, orig) {
			t.Fatal("body modified")
		}
	})
}
