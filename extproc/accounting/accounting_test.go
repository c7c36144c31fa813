package accounting

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/accesslog"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/delivered"
	"github.com/weir-ai/weir/extproc/pipeline"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/route"
	"github.com/weir-ai/weir/extproc/runtime"
	"github.com/weir-ai/weir/extproc/spend"
	"github.com/weir-ai/weir/extproc/tokens"
)

// records collects spend records.
type records struct {
	mu   sync.Mutex
	recs []spend.Record
}

func (r *records) Append(_ context.Context, rec spend.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}

// metricsLog records the metrics calls.
type metricsLog struct{ calls []string }

func (m *metricsLog) Request(model, backend, endpoint string, status int, _ time.Duration) {
	m.calls = append(m.calls, "request "+model+" "+backend+" "+endpoint+" "+itoa(int64(status)))
}
func (m *metricsLog) Tokens(model, backend string, prompt, completion, cached, cacheWrite int64) {
	m.calls = append(m.calls, "tokens "+itoa(prompt)+" "+itoa(completion)+" "+itoa(cached)+" "+itoa(cacheWrite))
}
func (m *metricsLog) Spend(model, backend string, usd float64) {
	m.calls = append(m.calls, "spend "+model)
}
func (m *metricsLog) IncompleteStream(model, backend, reason string) {
	m.calls = append(m.calls, "incomplete "+model+" "+backend+" "+reason)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

type fixture struct {
	stage Stage
	recs  *records
	met   *metricsLog
	log   *bytes.Buffer
}

func newFixture(bodies bool) *fixture {
	f := &fixture{recs: &records{}, met: &metricsLog{}, log: &bytes.Buffer{}}
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	logger := &accesslog.Logger{W: f.log, Bodies: bodies}
	f.stage = Stage{
		Gate:     &admission.Gate{Spend: f.recs, Tokens: tokens.Media{}},
		Metrics:  f.met,
		Access:   func() *accesslog.Logger { return logger },
		Now:      func() time.Time { return start.Add(250 * time.Millisecond) },
		Tokenize: func(_ string, body []byte) (int, error) { return len(body) / 4, nil },
	}
	return f
}

func request(routed bool) *pipeline.Request {
	be := &runtime.Backend{Config: &config.Backend{Name: "ant", Provider: "anthropic"}}
	return &pipeline.Request{
		ID: "req-1", ReservationID: "res-1", Method: "POST", Path: "/v1/messages",
		Start:    time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC),
		Endpoint: provider.EndpointMessages, Model: "claude", Body: []byte(`{"model":"claude","messages":[{"role":"user","content":"hello there"}]}`),
		Target:  route.Target{Model: &config.Model{Name: "claude"}, UpstreamModel: "claude-sonnet-4-5"},
		Backend: be, Routed: routed, Runtime: &runtime.Runtime{},
	}
}

func TestEnd(t *testing.T) {
	usage := provider.Usage{PromptTokens: 30, CompletionTokens: 7, TotalTokens: 37, CachedTokens: 10, CacheWriteTokens: 5}
	tests := []struct {
		name        string
		routed      bool
		resp        pipeline.Response
		wantRecords int
		wantTokens  string
		wantPartial bool
		wantLogErr  string
		// wantIncomplete is the incomplete-stream metric's reason; empty:
		// not counted.
		wantIncomplete string
	}{
		{"a routed request is settled once", true, pipeline.Response{Status: 200, Usage: usage, Done: true}, 1, "tokens 30 7 10 5", false, "", ""},
		{"a refused request writes no spend", false, pipeline.Response{Status: 429, Done: true, Err: errString("over the limit")}, 0, "tokens 0 0 0 0", false, "over the limit", ""},
		{"a stream cut before its usage is billed what it delivered", true, pipeline.Response{Status: 200, Stream: true, Delivered: deliveredText("Sunny and warm.")}, 1, "", true, "", "no_final_event"},
		{"a complete stream without the provider's usage", true, pipeline.Response{Status: 200, Stream: true, Delivered: completeText("Sunny.")}, 1, "", true, "", "no_usage"},
		{"a complete stream with usage is not counted", true, pipeline.Response{Status: 200, Stream: true, Delivered: completeText("Sunny."), Usage: usage}, 1, "tokens 30 7 10 5", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(false)
			r := request(tt.routed)
			f.stage.End(context.Background(), r, &tt.resp)
			if len(f.recs.recs) != tt.wantRecords {
				t.Fatalf("%d spend records, want %d", len(f.recs.recs), tt.wantRecords)
			}
			if tt.wantRecords > 0 {
				rec := f.recs.recs[0]
				if rec.RequestID != "res-1" || rec.ClientRequestID != "req-1" || rec.Backend != "ant" || rec.Model != "claude" || rec.Partial != tt.wantPartial || rec.LatencyMs != 250 {
					t.Errorf("record %+v", rec)
				}
				if tt.wantPartial && (rec.CompletionTokens <= 0 || rec.PromptTokens <= 0) {
					t.Errorf("partial record bills nothing: %+v", rec)
				}
			}
			if tt.wantTokens != "" && (len(f.met.calls) < 2 || f.met.calls[1] != tt.wantTokens) {
				t.Errorf("metrics %v, want %q", f.met.calls, tt.wantTokens)
			}
			var incomplete []string
			for _, c := range f.met.calls {
				if strings.HasPrefix(c, "incomplete ") {
					incomplete = append(incomplete, c)
				}
			}
			switch {
			case tt.wantIncomplete == "" && len(incomplete) > 0:
				t.Errorf("counted as incomplete: %v", incomplete)
			case tt.wantIncomplete != "" && (len(incomplete) != 1 || incomplete[0] != "incomplete claude ant "+tt.wantIncomplete):
				t.Errorf("incomplete-stream metric %v, want one with reason %s", incomplete, tt.wantIncomplete)
			}
			if want := "request claude ant messages " + itoa(int64(tt.resp.Status)); f.met.calls[0] != want {
				t.Errorf("metrics %v, want %q first", f.met.calls, want)
			}
			var line map[string]any
			if err := json.Unmarshal(f.log.Bytes(), &line); err != nil {
				t.Fatalf("access log %q: %v", f.log, err)
			}
			if line["request_id"] != "req-1" || line["path"] != "/v1/messages" {
				t.Errorf("access log %v", line)
			}
			if e, _ := line["error"].(string); e != tt.wantLogErr {
				t.Errorf("access log error %q, want %q", e, tt.wantLogErr)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func deliveredText(s string) *delivered.Text {
	d := delivered.New("claude-sonnet-4-5")
	d.Feed([]byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":" + strings.TrimSpace(itoaString(s)) + "}}\n\n"))
	return d
}

// completeText is a stream that reached its final event.
func completeText(s string) *delivered.Text {
	d := deliveredText(s)
	d.Feed([]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	return d
}

func itoaString(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestBilled: the provider's final usage stands for a complete stream; a
// stream without it bills the larger of observed and delivered, and a
// prompt the provider never reported at the smaller of the reservation's
// estimate and the token count.
func TestBilled(t *testing.T) {
	body := []byte(`{"model":"claude","messages":[{"role":"user","content":"` + strings.Repeat("tell me a long story about the sea. ", 20) + `"}]}`)
	complete := deliveredText("done")
	complete.Feed([]byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
	tests := []struct {
		name        string
		reserved    int64
		resp        pipeline.Response
		wantPartial bool
		wantPrompt  int64
	}{
		{"buffered: the provider's usage", 0, pipeline.Response{Usage: provider.Usage{PromptTokens: 9, CompletionTokens: 3}}, false, 9},
		{"complete stream: the provider's usage", 0, pipeline.Response{Stream: true, Delivered: complete, Usage: provider.Usage{PromptTokens: 9, CompletionTokens: 1}}, false, 9},
		{"cut stream, prompt known", 0, pipeline.Response{Stream: true, Delivered: deliveredText("a b c d e f"), Usage: provider.Usage{PromptTokens: 9}}, true, 9},
		{"cut stream, byte estimate loses to the count", int64(len(body)), pipeline.Response{Stream: true, Delivered: deliveredText("x")}, true, int64(len(body)) / 4},
		{"cut stream, small estimate wins", 5, pipeline.Response{Stream: true, Delivered: deliveredText("x")}, true, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(false)
			r := request(true)
			r.Body = body
			r.Ticket.Prompt = tt.reserved
			u, partial := f.stage.Billed(r, &tt.resp)
			if partial != tt.wantPartial || u.PromptTokens != tt.wantPrompt {
				t.Errorf("partial %v prompt %d; want %v %d", partial, u.PromptTokens, tt.wantPartial, tt.wantPrompt)
			}
			if partial && u.CompletionTokens < tt.resp.Usage.CompletionTokens {
				t.Errorf("completion %d below the observed %d", u.CompletionTokens, tt.resp.Usage.CompletionTokens)
			}
			if partial && u.TotalTokens < u.PromptTokens+u.CompletionTokens {
				t.Errorf("total %d below prompt+completion", u.TotalTokens)
			}
		})
	}
}

func TestResponseBody(t *testing.T) {
	tests := []struct {
		name       string
		bodies     bool
		stream     bool
		costHeader bool
		priced     bool
		wantLogged string
		wantCost   bool
	}{
		{"logs the body when bodies are logged", true, false, false, false, "abc", false},
		{"keeps nothing otherwise", false, false, false, false, "", false},
		{"cost header on a priced buffered body", false, false, true, true, "", true},
		{"no cost header on a stream", false, true, true, true, "", false},
		{"no cost header when unpriced", false, false, true, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(tt.bodies)
			r := request(true)
			r.Runtime.Policy = &admission.Policy{CostHeader: tt.costHeader}
			r.Ticket.Priced = tt.priced
			resp := &pipeline.Response{Status: 200, Stream: tt.stream, Served: r.Backend}
			in := []byte("abc")
			out, err := f.stage.ResponseBody(context.Background(), r, resp, in)
			if err != nil || !pipeline.Same(out, in) {
				t.Fatalf("the body changed: %q, %v", out, err)
			}
			if string(resp.Body) != tt.wantLogged {
				t.Errorf("kept %q, want %q", resp.Body, tt.wantLogged)
			}
			hs := resp.TakeHeaders()
			if got := len(hs) == 1 && hs[0].Key == HeaderCost; got != tt.wantCost {
				t.Errorf("headers %v, want cost header %v", hs, tt.wantCost)
			}
		})
	}
}
