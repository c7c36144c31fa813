package e2e

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/extproc"
	"github.com/weir-ai/weir/extproc/vkey"
	"github.com/weir-ai/weir/test/fakeprovider"
	"github.com/weir-ai/weir/test/harness"
	"github.com/weir-ai/weir/test/redistest"
)

// gateway is a data plane in front of one or more extproc replicas. With
// several replicas the harness sends each ext_proc stream to the next one,
// so a request's router-level and upstream-level streams land on
// different processes, as they may behind a real Envoy.
type gateway struct {
	URL      string
	OpenAI   *fakeprovider.Server
	replicas []*extproc.Server
	// done receives one value per request whose router-level stream has
	// ended (settled), so tests wait on events, not timers.
	done chan struct{}
	// synced receives (coalesced) after a replica reloads the admin API's
	// keys, teams and users.
	synced chan struct{}
}

type rrClient struct {
	cs []extprocv3.ExternalProcessorClient
	n  atomic.Uint64
}

func (r *rrClient) Process(ctx context.Context, opts ...grpc.CallOption) (extprocv3.ExternalProcessor_ProcessClient, error) {
	return r.cs[int(r.n.Add(1))%len(r.cs)].Process(ctx, opts...)
}

func startGateway(t *testing.T, yaml string, replicas int, hopts ...func(*harness.Options)) *gateway {
	t.Helper()
	return startGatewayWith(t, yaml, replicas, extproc.Options{}, hopts...)
}

// startGatewayWith is startGateway with the replicas' options (a clock);
// the gateway sets their logger and event hooks.
func startGatewayWith(t *testing.T, yaml string, replicas int, eo extproc.Options, hopts ...func(*harness.Options)) *gateway {
	t.Helper()
	fake := fakeprovider.New(fakeprovider.OpenAI)
	u, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	yaml = strings.ReplaceAll(yaml, "FAKE_URL", u)
	// Other providers' fakes start when the config names them.
	for _, k := range []fakeprovider.Kind{fakeprovider.Anthropic, fakeprovider.Azure, fakeprovider.Gemini, fakeprovider.Bedrock} {
		ph := "FAKE_" + strings.ToUpper(string(k)) + "_URL"
		if !strings.Contains(yaml, ph) {
			continue
		}
		f := fakeprovider.New(k)
		fu, err := f.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		yaml = strings.ReplaceAll(yaml, ph, fu)
	}
	raw := []byte(yaml)
	cfg, err := config.Parse(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{OpenAI: fake, done: make(chan struct{}, 4096), synced: make(chan struct{}, 1)}
	rr := &rrClient{}
	quiet := slog.New(slog.DiscardHandler)
	for range replicas {
		o := eo
		o.Logger = cmp.Or(o.Logger, quiet)
		o.OnFinish, o.OnKeySync = func() {
			select {
			case g.done <- struct{}{}:
			default:
			}
		}, func() {
			select {
			case g.synced <- struct{}{}:
			default:
			}
		}
		s := extproc.New(o)
		if err := s.LoadConfig(raw, nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		gs := grpc.NewServer()
		extprocv3.RegisterExternalProcessorServer(gs, s)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = gs.Serve(lis) }()
		t.Cleanup(gs.Stop)
		conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		rr.cs = append(rr.cs, extprocv3.NewExternalProcessorClient(conn))
		g.replicas = append(g.replicas, s)
	}
	res, err := xds.Build(cfg, xds.Options{ExtProcAddress: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ho := harness.Options{ExtProc: rr}
	for _, o := range hopts {
		o(&ho)
	}
	h, err := harness.New(res, ho)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

func newKey(t *testing.T) (vkey.Secret, string) {
	t.Helper()
	k, err := vkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.Hash().String()
}

func chat(t *testing.T, url, key, model string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	h := map[string]string{}
	if key != "" {
		h["authorization"] = "Bearer " + key
	}
	for k, v := range hdr {
		h[k] = v
	}
	return post(t, url+"/v1/chat/completions", `{"model":"`+model+`","max_tokens":16,"messages":[{"role":"user","content":"hello"}]}`, h)
}

const limitsBase = `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "FAKE_URL/v1", forward_headers: [x-fake-behavior]}
models:
  - {name: gpt-4o-mini, backends: [oa]}
  - {name: gpt-4o, backends: [oa]}
`

func TestVirtualKeys(t *testing.T) {
	good, goodH := newKey(t)
	blocked, blockedH := newKey(t)
	expired, expiredH := newKey(t)
	limited, limitedH := newKey(t)
	aliased, aliasedH := newKey(t)
	unknown, _ := newKey(t)
	yaml := limitsBase + fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, key_alias: good}
    - {hash: %s, blocked: true}
    - {hash: %s, expires: 2020-01-01T00:00:00Z}
    - {hash: %s, models: [gpt-4o-mini]}
    - {hash: %s, aliases: {fast: gpt-4o-mini}, models: [gpt-4o-mini]}
`, goodH, blockedH, expiredH, limitedH, aliasedH)
	g := startGateway(t, yaml, 1)
	tests := []struct {
		name       string
		key, model string
		hdr        map[string]string
		wantStatus int
		wantType   string
		wantMsg    string
		wantRule   string // x-weir-refusal-rule; "" for none
	}{
		{"valid key", good.Reveal(), "gpt-4o-mini", nil, 200, "", "", ""},
		{"x-api-key works too", "", "gpt-4o-mini", map[string]string{"x-api-key": good.Reveal()}, 200, "", "", ""},
		{"missing key", "", "gpt-4o-mini", nil, 401, "authentication_error", "no API key", "key.missing"},
		{"unknown key", unknown.Reveal(), "gpt-4o-mini", nil, 401, "authentication_error", "invalid API key", "key.unknown"},
		{"malformed key", "sk-not-weir", "gpt-4o-mini", nil, 401, "authentication_error", "invalid API key", "key.unknown"},
		{"blocked key", blocked.Reveal(), "gpt-4o-mini", nil, 403, "permission_error", "blocked", "key.blocked"},
		{"expired key", expired.Reveal(), "gpt-4o-mini", nil, 403, "permission_error", "expired", "key.expired"},
		{"model not allowed", limited.Reveal(), "gpt-4o", nil, 403, "permission_error", "gpt-4o", "key.model_not_allowed"},
		{"allowed model", limited.Reveal(), "gpt-4o-mini", nil, 200, "", "", ""},
		{"key alias resolves", aliased.Reveal(), "fast", nil, 200, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := chat(t, g.URL, tt.key, tt.model, tt.hdr)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			// The rule reaches the client through Envoy, and ends the message.
			if got := resp.Header.Get("x-weir-refusal-rule"); got != tt.wantRule {
				t.Errorf("x-weir-refusal-rule %q, want %q", got, tt.wantRule)
			}
			if msg := gjson.GetBytes(body, "error.message").Str; tt.wantRule != "" && !strings.HasSuffix(msg, "[rule "+tt.wantRule+"]") {
				t.Errorf("message %q does not name rule %s", msg, tt.wantRule)
			}
			if tt.wantType != "" {
				if typ := gjson.GetBytes(body, "error.type").Str; typ != tt.wantType {
					t.Errorf("type %q: %s", typ, body)
				}
				if msg := gjson.GetBytes(body, "error.message").Str; !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message %q lacks %q", msg, tt.wantMsg)
				}
				if strings.Contains(string(body), tt.key) && tt.key != "" {
					t.Error("the error echoes the key")
				}
			}
		})
	}
	// The provider never sees a virtual key.
	for _, r := range g.OpenAI.Requests() {
		if strings.Contains(r.Header.Get("authorization"), "sk-weir-") {
			t.Fatal("virtual key forwarded upstream")
		}
	}
}

func TestRateLimitHeadersAndRetryAfter(t *testing.T) {
	key, hash := newKey(t)
	g := startGateway(t, limitsBase+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, rpm_limit: 2}
`, hash), 1)
	for i, want := range []struct {
		status    int
		remaining string
	}{{200, "1"}, {200, "0"}, {429, "0"}} {
		resp, body := chat(t, g.URL, key.Reveal(), "gpt-4o-mini", nil)
		if resp.StatusCode != want.status {
			t.Fatalf("request %d: status %d: %s", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("x-ratelimit-limit-requests"); got != "2" {
			t.Errorf("request %d: x-ratelimit-limit-requests = %q", i, got)
		}
		if got := resp.Header.Get("x-ratelimit-remaining-requests"); got != want.remaining {
			t.Errorf("request %d: remaining = %q, want %s", i, got, want.remaining)
		}
		if want.status == 429 {
			if resp.Header.Get("retry-after") == "" || gjson.GetBytes(body, "error.code").Str != "rate_limit_exceeded" {
				t.Errorf("429 without retry-after or code: %v %s", resp.Header, body)
			}
			if !strings.Contains(gjson.GetBytes(body, "error.message").Str, "key rpm") {
				t.Errorf("429 must name the rule: %s", body)
			}
		}
	}
}

// TestExactUnderConcurrency fires 1000 concurrent requests at one key
// whose limit admits N, through two extproc replicas sharing the store,
// and checks that exactly N are served: requests per minute and parallel
// slots are exact; a failed upstream call releases its reservation.
func TestExactUnderConcurrency(t *testing.T) {
	const n, total = 37, 1000
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			key, hash := newKey(t)
			g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, rpm_limit: %d}
`, hash, n), st.replicas)
			ok, limited, other := burst(g.URL, total, func(int) (string, map[string]string) {
				return `{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"x"}]}`,
					map[string]string{"authorization": "Bearer " + key.Reveal()}
			})
			t.Logf("served %d, limited %d, other %d", ok, limited, other)
			if ok != n || limited != total-n || other != 0 {
				t.Fatalf("served %d of %d allowed (limited %d, other %d)", ok, n, limited, other)
			}
			if got := len(g.OpenAI.Requests()); got != n {
				t.Errorf("upstream saw %d requests, want %d", got, n)
			}
		})
	}
}

func TestFailedUpstreamReleasesParallelSlot(t *testing.T) {
	key, hash := newKey(t)
	g := startGateway(t, limitsBase+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, max_parallel_requests: 1}
`, hash), 1)
	// Each request ends (and settles) before the next starts: a failed
	// one must give its slot back, or the next would be refused.
	for i, beh := range []string{"status=500", "", "status=429", ""} {
		hdr := map[string]string{}
		if beh != "" {
			hdr["x-fake-behavior"] = beh
		}
		resp, body := chat(t, g.URL, key.Reveal(), "gpt-4o-mini", hdr)
		if resp.StatusCode == 429 && beh == "" {
			t.Fatalf("request %d refused: the previous request did not release its slot: %s", i, body)
		}
		// The slot is released when the router-level stream ends, just
		// after the client has its response: wait for that event.
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never settled")
		}
	}
}

// TestBudgetExact: when a request's reservation equals its actual cost (the
// fake answers with exactly max_tokens, and only output tokens are priced),
// a budget worth N requests serves exactly N of 1000 concurrent ones,
// streams included, and each served request leaves exactly one spend
// record.
func TestBudgetExact(t *testing.T) {
	const n, total, maxTokens = 37, 1000, 8
	// $1 per million output tokens is 1 micro-dollar per token.
	budget := fmt.Sprintf("%.6f", float64(n*maxTokens)/1e6)
	for _, st := range sharedStores {
		t.Run(st.name, func(t *testing.T) {
			key, hash := newKey(t)
			spendFile := t.TempDir() + "/spend.jsonl"
			g := startGateway(t, limitsBase+st.yaml(t)+fmt.Sprintf(`
pricing:
  - {backend: oa, model: gpt-4o-mini, input: 0, output: 1}
spend: {file: %q}
auth:
  keys:
    - {hash: %s, max_budget: %s}
`, spendFile, hash, budget), st.replicas)
			ok, limited, other := burst(g.URL, total, func(i int) (string, map[string]string) {
				body := fmt.Sprintf(`{"model":"gpt-4o-mini","max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"x"}]}`, maxTokens, i%2 == 0)
				return body, map[string]string{"authorization": "Bearer " + key.Reveal(), "x-fake-behavior": "exact-usage"}
			})
			t.Logf("served %d, limited %d, other %d", ok, limited, other)
			if ok != n || other != 0 {
				t.Fatalf("served %d, want exactly %d (limited %d, other %d)", ok, n, limited, other)
			}
			if st.replicas > 1 {
				return // records are spread over the replicas' writers
			}
			// Settles and spend records are written when each router stream
			// ends (all of them, refused ones too); then closing the replica
			// drains its writer into the file.
			for range total {
				<-g.done
			}
			for _, s := range g.replicas {
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(spendFile)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			var cost int64
			for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				id := gjson.Get(line, "request_id").Str
				if seen[id] {
					t.Errorf("spend record %s written twice", id)
				}
				seen[id] = true
				cost += gjson.Get(line, "cost_micro_usd").Int()
			}
			if len(seen) != n || cost != n*maxTokens {
				t.Errorf("%d spend records costing %d µ$, want %d costing %d", len(seen), cost, n, n*maxTokens)
			}
		})
	}
}

// TestRedisOutage stops Redis under a running gateway: fail_closed answers
// 503 (no budget can be overshot), fail_open keeps serving.
func TestRedisOutage(t *testing.T) {
	for _, tc := range []struct {
		mode string
		want int
	}{{"closed", 503}, {"open", 200}} {
		t.Run(tc.mode, func(t *testing.T) {
			r := redistest.Start(t)
			key, hash := newKey(t)
			g := startGateway(t, limitsBase+fmt.Sprintf(`
limits: {store: redis, fail_mode: %s, redis: {addr: %q}}
auth:
  keys:
    - {hash: %s, rpm_limit: 1000}
`, tc.mode, r.Addr, hash), 1)
			if resp, body := chat(t, g.URL, key.Reveal(), "gpt-4o-mini", nil); resp.StatusCode != 200 {
				t.Fatalf("before the outage: %d %s", resp.StatusCode, body)
			}
			r.Stop()
			resp, body := chat(t, g.URL, key.Reveal(), "gpt-4o-mini", nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("during the outage: %d %s, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want == 503 && gjson.GetBytes(body, "error.type").Str != "server_error" {
				t.Errorf("503 body = %s", body)
			}
		})
	}
}

// TestSoftBudgetAndCost: crossing a soft budget only alerts (header and
// metric), and the cost header prices the buffered response.
func TestSoftBudgetAndCost(t *testing.T) {
	key, hash := newKey(t)
	g := startGateway(t, limitsBase+fmt.Sprintf(`
limits: {cost_header: true}
pricing:
  - {backend: oa, model: gpt-4o-mini, input: 0, output: 10000}
auth:
  keys:
    - {hash: %s, soft_budget: 0.1, max_budget: 1000}
`, hash), 1)
	for i := range 2 {
		resp, body := chat(t, g.URL, key.Reveal(), "gpt-4o-mini", map[string]string{"x-fake-behavior": "exact-usage"})
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		// $0.01 per output token, 16 tokens: $0.16 per request. The
		// first request reserves more than the soft budget, which alerts.
		if got := resp.Header.Get("x-weir-cost"); got != "0.160000" {
			t.Errorf("request %d: x-weir-cost = %q", i, got)
		}
		if resp.Header.Get("x-weir-soft-budget-exceeded") != "true" {
			t.Errorf("request %d: no soft-budget header", i)
		}
	}
}

// TestContextWindow: a request that cannot fit the model's context window
// is refused before it goes upstream; one that fits goes, including when
// only the exact BPE count (not the byte bound) shows that it fits.
func TestContextWindow(t *testing.T) {
	g := startGateway(t, `
version: weir.dev/v1alpha1
backends:
  - {name: oa, provider: openai, base_url: "FAKE_URL/v1", forward_headers: [x-fake-behavior]}
models:
  - {name: gpt-4o-mini, backends: [oa], context_window: 60}
`, 1)
	tests := []struct {
		name       string
		words      int
		maxTokens  int
		wantStatus int
	}{
		{"small", 2, 0, 200},
		{"over the byte bound, under the exact count", 40, 0, 200},
		{"prompt too long", 80, 0, 400},
		{"max_tokens pushes it over", 40, 30, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.OpenAI.Reset()
			body := fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":%q}]`, strings.TrimSpace(strings.Repeat("a ", tt.words)))
			if tt.maxTokens > 0 {
				body += fmt.Sprintf(`,"max_tokens":%d`, tt.maxTokens)
			}
			resp, b := post(t, g.URL+"/v1/chat/completions", body+"}", nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			if tt.wantStatus == 400 {
				if gjson.GetBytes(b, "error.code").Str != "context_length_exceeded" {
					t.Errorf("body = %s", b)
				}
				if len(g.OpenAI.Requests()) != 0 {
					t.Error("a refused request reached the provider")
				}
			}
		})
	}
}

// recordingTransport notes when each attempt starts and how it ended, and
// runs before() ahead of every attempt after the first.
type recordingTransport struct {
	before   func()
	mu       sync.Mutex
	starts   []time.Time
	ends     []time.Time
	statuses []int
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// The start is when the SDK hands the attempt over, before before()
	// runs, so the measured wait is the SDK's own.
	rt.mu.Lock()
	n := len(rt.starts)
	rt.starts = append(rt.starts, time.Now())
	rt.mu.Unlock()
	if n > 0 && rt.before != nil {
		rt.before()
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.ends = append(rt.ends, time.Now())
	if err == nil {
		rt.statuses = append(rt.statuses, resp.StatusCode)
	}
	return resp, err
}

// TestSDKHonoursRetryAfter: a key with one parallel slot is busy; the
// openai-go SDK gets a 429 with Retry-After, waits at least that long,
// and its retry succeeds once the slot is free. Synchronised on events
// (the request reaching the provider, requests settling); the only time
// assertion is the lower bound the SDK must respect.
func TestSDKHonoursRetryAfter(t *testing.T) {
	key, hash := newKey(t)
	g := startGateway(t, limitsBase+fmt.Sprintf(`
auth:
  keys:
    - {hash: %s, max_parallel_requests: 1}
`, hash), 1)
	arrivals := g.OpenAI.Arrivals()
	// Hold the only slot: a request the fake answers only after a minute.
	holdCtx, release := context.WithCancel(context.Background())
	defer release()
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequestWithContext(holdCtx, "POST", g.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hold"}]}`))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("authorization", "Bearer "+key.Reveal())
		req.Header.Set("x-fake-behavior", "slow-first-byte=60s")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-arrivals // the holding request is upstream: its slot is taken
	rt := &recordingTransport{before: func() {
		// Free the slot before the retry goes out: end the holding
		// request and wait until it and the refused attempt have settled.
		release()
		<-held
		for range 2 {
			<-g.done
		}
	}}
	client := openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(key.Reveal()),
		option.WithMaxRetries(1), option.WithHTTPClient(&http.Client{Transport: rt}))
	r, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	if err != nil {
		t.Fatalf("after a retry: %v (statuses %v)", err, rt.statuses)
	}
	if len(rt.statuses) != 2 || rt.statuses[0] != 429 || rt.statuses[1] != 200 || r.Choices[0].Message.Content == "" {
		t.Fatalf("statuses %v", rt.statuses)
	}
	// The parallel limit answers Retry-After: 1; without it openai-go's
	// first backoff is about half a second.
	if wait := rt.starts[1].Sub(rt.ends[0]); wait < time.Second {
		t.Errorf("retried after %v, before the 1s Retry-After", wait)
	}
}

// sharedStores are the two counter stores the exactness tests run on: in
// memory behind one replica, and Redis shared by two replicas.
var sharedStores = []struct {
	name     string
	yaml     func(t *testing.T) string
	replicas int
}{
	{"memory, one replica", func(*testing.T) string { return "" }, 1},
	{"redis, two replicas", func(t *testing.T) string {
		r := redistest.Start(t)
		return "limits: {store: redis, redis: {addr: \"" + r.Addr + "\"}}\n"
	}, 2},
}

// burst sends total chat requests at once, 64 in flight, and counts how
// they ended: 200, refused by a limit (429; 402 for a budget that never
// resets), or anything else (including transport errors).
func burst(url string, total int, request func(i int) (body string, hdr map[string]string)) (ok, limited, other int64) {
	return burstTo(url+"/v1/chat/completions", total, request)
}

// burstTo is burst to any endpoint URL.
func burstTo(url string, total int, request func(i int) (body string, hdr map[string]string)) (ok, limited, other int64) {
	var nOK, nLimited, nOther atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	sem := make(chan struct{}, 64)
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sem <- struct{}{}
			defer func() { <-sem }()
			body, hdr := request(i)
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			req.Header.Set("content-type", "application/json")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				nOther.Add(1)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				nOK.Add(1)
			case resp.StatusCode == 429, resp.StatusCode == 402,
				// A request whose estimate alone exceeds a limit can never
				// fit: a 400 without Retry-After, still a limit's refusal.
				resp.StatusCode == 400 && gjson.GetBytes(b, "error.code").Str == "request_exceeds_limit":
				nLimited.Add(1)
			default:
				nOther.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	return nOK.Load(), nLimited.Load(), nOther.Load()
}
