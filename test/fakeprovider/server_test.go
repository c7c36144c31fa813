package fakeprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseBehaviors(t *testing.T) {
	cases := []struct {
		in      []string
		want    behaviors
		wantErr string
	}{
		{in: nil, want: behaviors{}},
		{in: []string{"status=429"}, want: behaviors{status: 429}},
		{in: []string{" slow-first-byte=250ms , cut-after=3"}, want: behaviors{slowFirstByte: 250 * time.Millisecond, cutAfter: 3}},
		{in: []string{"cache-tokens=10,5,exact-usage"}, want: behaviors{cacheRead: 10, cacheWrite: 5, cacheTokens: true, exactUsage: true}},
		{in: []string{"cache-tokens=10, 5", "cached=4,stream-error"}, want: behaviors{cacheRead: 10, cacheWrite: 5, cacheTokens: true, cached: 4, streamError: true}},
		{in: []string{"non-json-error=502"}, want: behaviors{nonJSONError: 502}},
		{in: []string{"empty-error=401"}, want: behaviors{emptyError: 401}},
		{in: []string{"status=200"}, wantErr: "bad status"},
		{in: []string{"status=abc"}, wantErr: "bad status"},
		{in: []string{"hold-after=5"}, want: behaviors{holdAfter: 5}},
		{in: []string{"cut-after=0"}, wantErr: "bad cut-after"},
		{in: []string{"hold-after=0"}, wantErr: "bad hold-after"},
		{in: []string{"slow-first-byte=soon"}, wantErr: "bad slow-first-byte"},
		{in: []string{"cache-tokens=10"}, wantErr: "bad cache-tokens"},
		{in: []string{"exact-usage=1"}, wantErr: "unknown behavior"},
		{in: []string{"teleport"}, wantErr: "unknown behavior"},
		{in: []string{"cached=3,7"}, wantErr: "unknown behavior"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.in, "|"), func(t *testing.T) {
			got, err := parseBehaviors(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestCutAfter(t *testing.T) {
	cases := []struct {
		kind Kind
		path string
		body string
		n    int
	}{
		{OpenAI, "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}`, 3},
		{OpenAI, "/v1/completions", `{"model":"m","stream":true,"prompt":"a b c"}`, 1},
		{Anthropic, "/v1/messages", `{"model":"m","max_tokens":99,"stream":true,"messages":[{"role":"user","content":"a b c d e f"}]}`, 4},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind)+tc.path, func(t *testing.T) {
			_, url := newTest(t, tc.kind)
			r := do(t, tc.kind, "POST", url+tc.path, tc.body, map[string]string{BehaviorHeader: fmt.Sprintf("cut-after=%d", tc.n)})
			if r.Status != 200 {
				t.Fatalf("status %d", r.Status)
			}
			if !errors.Is(r.ReadErr, io.ErrUnexpectedEOF) {
				t.Fatalf("read error %v, want unexpected EOF (connection aborted)", r.ReadErr)
			}
			evs := parseSSE(t, r.Body)
			if len(evs) != tc.n {
				t.Fatalf("%d events before the cut, want %d: %+v", len(evs), tc.n, evs)
			}
			for _, ev := range evs {
				if ev.Data == "[DONE]" || ev.Name == "message_stop" {
					t.Errorf("terminal event before the cut")
				}
			}
		})
	}

	t.Run("non-stream", func(t *testing.T) {
		s, url := newTest(t, Anthropic)
		body := `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}]}`
		full := do(t, Anthropic, "POST", url+"/v1/messages", body, nil)
		s.Reset() // same ids for the second request
		r := do(t, Anthropic, "POST", url+"/v1/messages", body, map[string]string{BehaviorHeader: "cut-after=10"})
		if r.Status != 200 || !errors.Is(r.ReadErr, io.ErrUnexpectedEOF) || string(r.Body) != string(full.Body[:10]) {
			t.Fatalf("status %d err %v body %q, want %q", r.Status, r.ReadErr, r.Body, full.Body[:10])
		}
	})
}

func TestStreamErrorOpenAI(t *testing.T) {
	_, url := newTest(t, OpenAI)
	r := do(t, OpenAI, "POST", url+"/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"x y"}]}`,
		map[string]string{BehaviorHeader: "stream-error"})
	if r.Status != 200 || r.ReadErr != nil {
		t.Fatalf("status %d err %v", r.Status, r.ReadErr)
	}
	evs := parseSSE(t, r.Body)
	if len(evs) != 3 {
		t.Fatalf("events %+v", evs)
	}
	last := decodeJSON(t, evs[2].Data)
	if get(t, last, "error", "type") != "server_error" || get(t, last, "error", "message") == "" {
		t.Errorf("error event %s", evs[2].Data)
	}
}

func TestNonJSONError(t *testing.T) {
	for _, kind := range []Kind{OpenAI, Anthropic} {
		t.Run(string(kind), func(t *testing.T) {
			_, url := newTest(t, kind)
			r := do(t, kind, "POST", url+"/v1/messages", `{}`, map[string]string{BehaviorHeader: "non-json-error=502"})
			if r.Status != 502 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(r.Body), "502 Bad Gateway") || json.Valid(r.Body) {
				t.Errorf("status %d type %q body %q", r.Status, r.Header.Get("Content-Type"), r.Body)
			}
		})
	}
}

// headerWriter is a ResponseWriter that notes whether anything was written.
type headerWriter struct {
	h       http.Header
	written bool
}

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(b []byte) (int, error) { w.written = true; return len(b), nil }
func (w *headerWriter) WriteHeader(int)             { w.written = true }

func TestSlowFirstByte(t *testing.T) {
	t.Run("cancellation stops the wait", func(t *testing.T) {
		s := New(OpenAI)
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, "POST", "/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
		req.Header.Set(BehaviorHeader, "slow-first-byte=1h")
		w := &headerWriter{h: http.Header{}}
		done := make(chan struct{})
		go func() {
			s.ServeHTTP(w, req)
			close(done)
		}()
		cancel()
		<-done // would hang for an hour if the timer ignored the context
		if w.written {
			t.Errorf("wrote a response after cancellation")
		}
		if len(s.Requests()) != 1 {
			t.Errorf("request not recorded")
		}
	})
	t.Run("reply after the wait", func(t *testing.T) {
		_, url := newTest(t, Anthropic)
		r := do(t, Anthropic, "POST", url+"/v1/messages", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}]}`,
			map[string]string{BehaviorHeader: "slow-first-byte=1ms,status=529"})
		if r.Status != 529 {
			t.Errorf("status %d", r.Status)
		}
	})
}

func TestRecorder(t *testing.T) {
	s := New(OpenAI)
	ts := httptest.NewServer(s)
	defer ts.Close()

	const n = 40
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"model":"m%d","messages":[{"role":"user","content":"x"}]}`, i)
			req, _ := http.NewRequest("POST", ts.URL+"/v1/chat/completions?i="+fmt.Sprint(i), strings.NewReader(body))
			req.Header.Set("X-Index", fmt.Sprint(i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}(i)
		go func() { // readers racing with writers
			defer wg.Done()
			_ = s.Requests()
			_, _ = s.Last()
		}()
	}
	wg.Wait()

	reqs := s.Requests()
	if len(reqs) != n {
		t.Fatalf("%d requests recorded, want %d", len(reqs), n)
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		var body struct{ Model string }
		if err := r.JSON(&body); err != nil {
			t.Fatal(err)
		}
		idx := r.Header.Get("X-Index")
		if r.Method != "POST" || r.Path != "/v1/chat/completions" || r.Query != "i="+idx || body.Model != "m"+idx {
			t.Errorf("recorded %+v", r)
		}
		seen[idx] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct requests", len(seen))
	}

	// Copies are independent of the recorder.
	reqs[0].Body[0] = 'X'
	reqs[0].Header.Set("X-Index", "mutated")
	if again := s.Requests(); again[0].Body[0] != '{' || again[0].Header.Get("X-Index") == "mutated" {
		t.Errorf("Requests returned shared memory")
	}

	s.Reset()
	if _, ok := s.Last(); ok || len(s.Requests()) != 0 {
		t.Errorf("Reset kept requests")
	}
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("x-request-id") != "req_fake000001" {
		t.Errorf("id sequence not restarted by Reset: %q", resp.Header.Get("x-request-id"))
	}
	if last, ok := s.Last(); !ok || last.Method != "POST" {
		t.Errorf("Last after Reset: %+v %v", last, ok)
	}
}

func TestStartClose(t *testing.T) {
	s := New(Anthropic)
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("url %q", url)
	}
	if _, err := s.Start("127.0.0.1:0"); err == nil {
		t.Errorf("second Start succeeded")
	}
	r := do(t, Anthropic, "POST", url+"/v1/messages", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if r.Status != 200 || get(t, r.json(t), "content", 0, "text") != "Hello from fake-anthropic! You said: hi" {
		t.Errorf("status %d body %s", r.Status, r.Body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url + "/v1/models"); err == nil {
		t.Errorf("server still answering after Close")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := New(OpenAI).Close(); err != nil {
		t.Errorf("Close of unstarted server: %v", err)
	}
}

func TestNewUnknownKindPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("no panic")
		}
	}()
	New("cohere")
}

func TestWordChunks(t *testing.T) {
	for _, s := range []string{"a", "Hello from x! You said: hi", "  lead", "trail  ", "a\n\tb  c ", "é ü"} {
		chunks := wordChunks(s)
		if strings.Join(chunks, "") != s || len(chunks) != len(strings.Fields(s)) {
			t.Errorf("wordChunks(%q) = %q", s, chunks)
		}
	}
	for _, s := range []string{"{}", `{"a":"é"}`, "{\"city\":\"test\"}"} {
		p := splitPieces(s)
		if strings.Join(p, "") != s || len(p) < 2 {
			t.Errorf("splitPieces(%q) = %q", s, p)
		}
	}
}

func TestShapeText(t *testing.T) {
	cases := []struct {
		text      string
		max       int
		exact     bool
		want      string
		wantTrunc bool
	}{
		{"a b c", 0, false, "a b c", false},
		{"a b c", 5, false, "a b c", false},
		{"a b c", 2, false, "a b", true},
		{"a b c", 5, true, "a b c lorem lorem", false},
		{"a b c", 2, true, "a b", false},
	}
	for _, tc := range cases {
		got, cut := shapeText(tc.text, tc.max, tc.exact)
		if got != tc.want || cut != tc.wantTrunc {
			t.Errorf("shapeText(%q,%d,%v) = %q,%v", tc.text, tc.max, tc.exact, got, cut)
		}
	}
	if got := schemaArgs(json.RawMessage(`not json`)); got != "{}" {
		t.Errorf("broken schema args %q", got)
	}
	if !reflect.DeepEqual(Embedding("x", 3), Embedding("x", 3)) {
		t.Errorf("Embedding not deterministic")
	}
}
