package pricing

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/extproc/provider"
)

func TestEveryEntryParsesAndIsPositive(t *testing.T) {
	es, err := Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) < 40 {
		t.Fatalf("only %d entries", len(es))
	}
	for _, e := range es {
		name := e.Provider + "/" + e.Model
		p := e.Price
		if p.Input <= 0 || p.CachedInput <= 0 || p.CacheWrite <= 0 {
			t.Errorf("%s: input prices must be positive: %+v", name, p)
		}
		if e.Embedding != (p.Output == 0) {
			t.Errorf("%s: output %d, embedding %v: only embeddings have no output price", name, p.Output, e.Embedding)
		}
		if p.CachedInput > p.Input {
			t.Errorf("%s: cached input %d above input %d", name, p.CachedInput, p.Input)
		}
		if p.LongThreshold > 0 && (p.Long.Input < p.Input || p.Long.Output < p.Output) {
			t.Errorf("%s: long tier cheaper than base", name)
		}
		if !strings.HasPrefix(e.URL(), "https://") {
			t.Errorf("%s: source %q has no URL", name, e.Source)
		}
		d, err := e.AsOf()
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if d.Before(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || d.After(time.Now().Add(48*time.Hour)) {
			t.Errorf("%s: implausible as-of date %s", name, d.Format(time.DateOnly))
		}
		if !e.Verified && !strings.HasPrefix(e.Note, "unverified") {
			t.Errorf("%s: an unverified price must say so in its note, got %q", name, e.Note)
		}
	}
}

func TestRequiredModels(t *testing.T) {
	tab := Default()
	for _, c := range []struct{ prov, model string }{
		{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"openai", "gpt-4.1"}, {"openai", "gpt-4.1-mini"},
		{"openai", "gpt-4.1-nano"}, {"openai", "o3"}, {"openai", "o4-mini"},
		{"openai", "text-embedding-3-small"}, {"openai", "text-embedding-3-large"},
		{"azure", "gpt-4o"}, {"azure", "text-embedding-3-small"},
		{"anthropic", "claude-opus-4-5"}, {"anthropic", "claude-sonnet-4-5"}, {"anthropic", "claude-haiku-4-5"},
		{"anthropic", "claude-3-7-sonnet"}, {"anthropic", "claude-3-5-sonnet"}, {"anthropic", "claude-3-5-haiku"},
		{"gemini", "gemini-2.5-pro"}, {"gemini", "gemini-2.5-flash"}, {"gemini", "gemini-2.5-flash-lite"},
		{"gemini", "gemini-embedding-001"},
		{"bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"}, {"bedrock", "amazon.nova-pro-v1:0"},
		{"bedrock", "amazon.titan-embed-text-v2:0"},
	} {
		if _, ok := tab.Lookup(c.prov, c.model); !ok {
			t.Errorf("%s/%s: not found", c.prov, c.model)
		}
	}
}

func TestLookupFallbacks(t *testing.T) {
	tab := Default()
	tests := []struct {
		prov, model, want string // want: the entry (in prov) it must price as; "" for unknown
		wantProv          string
	}{
		{"openai", "gpt-4o-mini", "gpt-4o-mini", ""},
		{"openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", ""},
		{"openai", "gpt-4o-2024-08-06", "gpt-4o", ""},
		{"openai", "gpt-4.1-2025-04-14", "gpt-4.1", ""},
		{"openai", "o3-2025-04-16", "o3", ""},
		{"openai", "openai/gpt-4o", "gpt-4o", ""},
		{"azure", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "openai"},
		{"anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5", ""},
		{"anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku", ""},
		{"anthropic", "claude-3-7-sonnet-latest", "claude-3-7-sonnet", ""},
		{"anthropic", "claude-opus-4-0", "claude-opus-4", ""},
		{"anthropic", "claude-opus-4-20250514", "claude-opus-4", ""},
		{"bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", ""},
		{"bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4", ""},
		{"bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", ""},
		{"bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet", ""},
		{"bedrock", "amazon.nova-micro-v1:0", "nova-micro", ""},
		{"bedrock", "us.amazon.nova-lite-v1:0", "nova-lite", ""},
		{"bedrock", "amazon.titan-embed-text-v2:0", "titan-embed-text-v2", ""},
		{"bedrock", "amazon.titan-embed-text-v1", "titan-embed-text-v1", ""},
		{"gemini", "models/gemini-2.5-flash", "gemini-2.5-flash", ""},
		{"gemini", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash", ""},
		{"gemini", "gemini-2.5-pro-exp-03-25", "gemini-2.5-pro", ""},
		{"bedrock", "invoke:anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5", ""},
		{"bedrock", "invoke:us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", ""},
		{"vertex", "gemini-2.5-flash", "gemini-2.5-flash", "gemini"},
		{"vertex", "publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro", "gemini"},
		{"vertex", "claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic"},
		{"vertex", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5", "anthropic"},
		{"vertex", "gpt-4o", "", ""},
		{"openai", "llama-3-70b", "", ""},
		{"openai", "", "", ""},
		{"unknown-provider", "gpt-4o", "", ""},
		{"openai", "gpt-4o-audio-preview", "", ""}, // no prefix guessing beyond dates
	}
	for _, tc := range tests {
		got, ok := tab.Lookup(tc.prov, tc.model)
		if tc.want == "" {
			if ok || !got.Zero() {
				t.Errorf("Lookup(%q, %q) = %+v, %v; want unknown", tc.prov, tc.model, got, ok)
			}
			continue
		}
		wp := tc.wantProv
		if wp == "" {
			wp = tc.prov
		}
		want, wok := tab.byProvider[wp][tc.want]
		if !wok {
			t.Fatalf("test names missing entry %s/%s", wp, tc.want)
		}
		if !ok || got != want {
			t.Errorf("Lookup(%q, %q) = %+v, %v; want %s/%s %+v", tc.prov, tc.model, got, ok, wp, tc.want, want)
		}
	}
}

func TestCost(t *testing.T) {
	tab := Default()
	price := func(prov, model string) Price {
		p, ok := tab.Lookup(prov, model)
		if !ok {
			t.Fatalf("%s/%s unknown", prov, model)
		}
		return p
	}
	tests := []struct {
		name string
		p    Price
		u    provider.Usage
		want int64
	}{
		// gpt-4o: $2.50 in, $10 out per M: 1000 in = 2500 µ$, 500 out = 5000 µ$.
		{"gpt-4o plain", price("openai", "gpt-4o"), provider.Usage{PromptTokens: 1000, CompletionTokens: 500}, 7500},
		// 1000 prompt of which 400 cached at $1.25: 600*2.5 + 400*1.25 = 1500+500.
		{"gpt-4o cached", price("openai", "gpt-4o"), provider.Usage{PromptTokens: 1000, CachedTokens: 400}, 2000},
		// gpt-4o-mini: 1 token in at $0.15/M is 0.15 µ$: rounds up to 1.
		{"round up", price("openai", "gpt-4o-mini"), provider.Usage{PromptTokens: 1}, 1},
		{"zero usage", price("openai", "gpt-4o-mini"), provider.Usage{}, 0},
		// 7 tokens at 0.075 cached: 0.525 µ$ -> 1.
		{"cached round up", price("openai", "gpt-4o-mini"), provider.Usage{PromptTokens: 7, CachedTokens: 7}, 1},
		// sonnet 4.5: 1000 fresh *3 + 2000 read *0.30 + 4000 write *3.75 + 100 out *15
		// = 3000 + 600 + 15000 + 1500.
		{"anthropic cache", price("anthropic", "claude-sonnet-4-5"),
			provider.Usage{PromptTokens: 7000, CachedTokens: 2000, CacheWriteTokens: 4000, CompletionTokens: 100}, 20100},
		// gemini 2.5 pro long tier: 300k prompt at $2.50 + 1000 out at $15.
		{"gemini long", price("gemini", "gemini-2.5-pro"), provider.Usage{PromptTokens: 300_000, CompletionTokens: 1000}, 750_000 + 15_000},
		{"gemini short", price("gemini", "gemini-2.5-pro"), provider.Usage{PromptTokens: 200_000, CompletionTokens: 1000}, 250_000 + 10_000},
		{"embedding", price("openai", "text-embedding-3-small"), provider.Usage{PromptTokens: 1_000_000}, 20_000},
		{"negative counts", price("openai", "gpt-4o"), provider.Usage{PromptTokens: -5, CompletionTokens: -1, CachedTokens: -3}, 0},
		// More cached than prompt (a provider bug): no negative fresh part.
		{"cached exceeds prompt", price("openai", "gpt-4o"), provider.Usage{PromptTokens: 10, CachedTokens: 20}, 25},
		{"unknown is free", Price{}, provider.Usage{PromptTokens: 1e6, CompletionTokens: 1e6}, 0},
		// Counts that would overflow int64 pico-dollars saturate at
		// MaxInt64 pico (9,223,372,036,854 µ$ rounded up), never wrap.
		{"2^56 out saturates", price("openai", "gpt-4o-mini"), provider.Usage{PromptTokens: 10, CompletionTokens: 1 << 56}, math.MaxInt64/1_000_000 + 1},
		{"max out saturates", price("openai", "gpt-4o-mini"), provider.Usage{CompletionTokens: math.MaxInt64}, math.MaxInt64/1_000_000 + 1},
		{"max in and out saturate", price("openai", "gpt-4o"), provider.Usage{PromptTokens: math.MaxInt64, CompletionTokens: math.MaxInt64}, math.MaxInt64/1_000_000 + 1},
	}
	for _, tc := range tests {
		if got := tc.p.Cost(tc.u); got != tc.want {
			t.Errorf("%s: Cost = %d µ$, want %d", tc.name, got, tc.want)
		}
	}
}

func TestUSDExact(t *testing.T) {
	p, err := USD{Input: 0.075, Output: 0.00875}.Price()
	if err != nil {
		t.Fatal(err)
	}
	if p.Input != 75_000 || p.Output != 8_750 {
		t.Fatalf("got %+v", p)
	}
	if p.CachedInput != p.Input || p.CacheWrite != p.Input {
		t.Fatalf("zero cached/cache-write must default to input: %+v", p)
	}
	for _, bad := range []USD{{Input: -1}, {Output: 1e9}, {CachedInput: -0.1}} {
		if _, err := bad.Price(); err == nil {
			t.Errorf("%+v: want error", bad)
		}
	}
}

func TestOverrides(t *testing.T) {
	base := Default()
	tab, err := base.With(
		Override{Backend: "vllm-local", USD: USD{Input: 0.01, Output: 0.02}},
		Override{Backend: "vllm-local", Model: "big", USD: USD{Input: 1, Output: 2}},
		Override{Provider: "openai", Model: "gpt-4o", USD: USD{Input: 5, Output: 20}},
		Override{Provider: "openai", Model: "my-finetune", USD: USD{Input: 3, Output: 12}},
		Override{Model: "llama-3-70b", USD: USD{Input: 0.5, Output: 0.7}},
		Override{Provider: "azure", Model: "gpt-4o-mini", USD: USD{Input: 0.2, Output: 0.8}},
	)
	if err != nil {
		t.Fatal(err)
	}
	get := func(backend, prov, model string) Price {
		t.Helper()
		p, ok := tab.LookupBackend(backend, prov, model)
		if !ok {
			t.Fatalf("%s %s/%s: unknown", backend, prov, model)
		}
		return p
	}
	if p := get("vllm-local", "openai", "anything"); p.Input != 10_000 || p.Output != 20_000 {
		t.Errorf("backend-wide: %+v", p)
	}
	if p := get("vllm-local", "openai", "big"); p.Input != 1_000_000 {
		t.Errorf("backend+model: %+v", p)
	}
	if p := get("", "openai", "gpt-4o-2024-08-06"); p.Input != 5_000_000 {
		t.Errorf("provider override must apply through date fallback: %+v", p)
	}
	if p := get("", "azure", "gpt-4o"); p.Input != 5_000_000 {
		t.Errorf("azure follows openai overrides: %+v", p)
	}
	if p := get("", "azure", "gpt-4o-mini"); p.Input != 200_000 {
		t.Errorf("azure's own override: %+v", p)
	}
	if p := get("", "openai", "gpt-4o-mini"); p.Input != 150_000 {
		t.Errorf("azure override leaked into openai: %+v", p)
	}
	if p := get("", "openai", "my-finetune"); p.Output != 12_000_000 {
		t.Errorf("added model: %+v", p)
	}
	if p := get("", "gemini", "llama-3-70b"); p.Input != 500_000 {
		t.Errorf("model-only override: %+v", p)
	}
	if p := get("other-backend", "openai", "gpt-4o-mini"); p.Input != 150_000 {
		t.Errorf("another backend falls through to the provider: %+v", p)
	}
	// The base table is unchanged.
	if p, _ := base.Lookup("openai", "gpt-4o"); p.Input != 2_500_000 {
		t.Errorf("With changed its receiver: %+v", p)
	}
	if p := get("", "vertex", "gemini-2.5-flash"); p.Input != 300_000 {
		t.Errorf("vertex follows the gemini table: %+v", p)
	}
	if tab.Known("", "openai", "o1-pro") || tab.HasFallback() {
		t.Error("no fallback configured, yet o1-pro is priced")
	}
	for _, bad := range []Override{
		{Provider: "openai", USD: USD{Input: 1}},
		{Provider: "openai", Model: Fallback, USD: USD{Input: 1}},
		{Backend: "vllm-local", Model: Fallback, USD: USD{Input: 1}},
	} {
		if _, err := base.With(bad); err == nil {
			t.Errorf("override %+v must fail", bad)
		}
	}
	if _, err := base.With(Override{Provider: "openai", USD: USD{Input: 1}}); err == nil {
		t.Error("override without model or backend must fail")
	}
	if _, err := base.With(Override{Model: "x", USD: USD{Input: -1}}); err == nil {
		t.Error("negative price must fail")
	}
}

func TestFallback(t *testing.T) {
	tab, err := Default().With(
		Override{Model: Fallback, USD: USD{Input: 30, Output: 60}},
		Override{Provider: "vertex", Model: "claude-sonnet-4-5", USD: USD{Input: 3.3, Output: 16.5}},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		backend, prov, model string
		wantInput            int64
		wantKnown            bool
	}{
		{"", "openai", "o1-pro", 30_000_000, false},
		{"", "gemini", "gemini-3-pro", 30_000_000, false},
		{"", "openai", "gpt-4o-mini", 150_000, true},
		{"", "vertex", "claude-sonnet-4-5@20250929", 3_300_000, true}, // vertex's own override
		{"", "anthropic", "claude-sonnet-4-5", 3_000_000, true},       // not changed by it
		{"", "bedrock", "invoke:anthropic.claude-sonnet-4-5-20250929-v1:0", 3_000_000, true},
	}
	for _, tc := range tests {
		p, ok := tab.LookupBackend(tc.backend, tc.prov, tc.model)
		if !ok || p.Input != tc.wantInput {
			t.Errorf("LookupBackend(%s/%s) = %+v, %v; want input %d", tc.prov, tc.model, p, ok, tc.wantInput)
		}
		if got := tab.Known(tc.backend, tc.prov, tc.model); got != tc.wantKnown {
			t.Errorf("Known(%s/%s) = %v, want %v", tc.prov, tc.model, got, tc.wantKnown)
		}
	}
	if !tab.HasFallback() {
		t.Error("HasFallback = false")
	}
}

func TestLookupCostAllocFree(t *testing.T) {
	tab := Default()
	u := provider.Usage{PromptTokens: 1234, CompletionTokens: 567, CachedTokens: 100}
	for _, m := range []struct{ prov, model string }{
		{"openai", "gpt-4o-mini-2024-07-18"},
		{"bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"openai", "unknown-model"},
	} {
		n := testing.AllocsPerRun(100, func() {
			p, _ := tab.Lookup(m.prov, m.model)
			_ = p.Cost(u)
		})
		if n != 0 {
			t.Errorf("%s/%s: %v allocs per Lookup+Cost", m.prov, m.model, n)
		}
	}
}

func BenchmarkLookupCost(b *testing.B) {
	tab := Default()
	u := provider.Usage{PromptTokens: 1234, CompletionTokens: 567, CachedTokens: 100}
	for _, m := range []struct{ name, prov, model string }{
		{"exact", "openai", "gpt-4o-mini"},
		{"dated", "openai", "gpt-4o-mini-2024-07-18"},
		{"bedrock", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"},
		{"unknown", "openai", "some-local-model"},
	} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			var sum int64
			for b.Loop() {
				p, _ := tab.Lookup(m.prov, m.model)
				sum += p.Cost(u)
			}
			_ = sum
		})
	}
}
