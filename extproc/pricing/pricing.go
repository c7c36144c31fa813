// Package pricing prices a request's token usage: an embedded table of the
// main models of every provider Weir speaks to (prices.yaml, with a dated
// source per entry), overridable per model and per backend.
//
// Money is integer micro-dollars ([budget.MicroUSD]), as budgets count it.
// Prices are held as micro-dollars per million tokens, so a price with up to
// six decimals in USD per million tokens is exact, and the cost of a usage
// is one integer sum divided by a million, rounded up: a budget never
// undercounts a fraction of a micro-dollar.
//
// Unknown models price at zero: [Table.Lookup] returns the zero [Price] and
// false. Admission refuses such a model on a budgeted request, unless an
// override with model "*" (and no provider or backend) sets the fallback
// price that every unknown model is charged at; [Table.Known] tells a
// priced model from one that only the fallback covers.
//
// Some providers serve another provider's models at that provider's list
// prices, under the same names: Azure OpenAI (OpenAI's table) and Vertex AI
// (Gemini's and Anthropic's). Their sections in prices.yaml hold only the
// prices that differ.
package pricing

import (
	_ "embed"
	"fmt"
	"math"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/weir-ai/weir/extproc/budget"
	"github.com/weir-ai/weir/extproc/internal/sat"
	"github.com/weir-ai/weir/extproc/provider"
)

//go:embed prices.yaml
var embedded []byte

// Price is one model's price, in micro-dollars per million tokens (which is
// also pico-dollars per token). The zero Price is free.
type Price struct {
	Input       int64 // uncached prompt tokens
	Output      int64 // completion tokens
	CachedInput int64 // prompt tokens read from the provider's cache
	CacheWrite  int64 // prompt tokens written to the cache
	// Above LongThreshold prompt tokens, the Long prices apply to the whole
	// request (Gemini 2.5 Pro). Zero means no such tier.
	LongThreshold int64
	Long          Tier
}

// Tier is the long-prompt price of a model.
type Tier struct {
	Input, Output, CachedInput, CacheWrite int64
}

// Cost is the cost of u in micro-dollars, rounded up. It saturates at
// math.MaxInt64 pico-dollars instead of overflowing.
//
// u.PromptTokens includes cached and cache-write tokens (every translator
// normalises usage that way); the uncached part is what remains. Negative
// counts, which no provider sends, count as zero.
func (p Price) Cost(u provider.Usage) budget.MicroUSD {
	in, out, cached, write := p.Input, p.Output, p.CachedInput, p.CacheWrite
	if p.LongThreshold > 0 && u.PromptTokens > p.LongThreshold {
		in, out, cached, write = p.Long.Input, p.Long.Output, p.Long.CachedInput, p.Long.CacheWrite
	}
	c := max(u.CachedTokens, 0)
	w := max(u.CacheWriteTokens, 0)
	fresh := max(u.PromptTokens-c-w, 0)
	// Saturating: a request asking for absurd counts costs the most an
	// int64 holds, never a wrapped (negative) amount.
	pico := sat.Add(sat.Add(sat.Mul(fresh, in), sat.Mul(c, cached)),
		sat.Add(sat.Mul(w, write), sat.Mul(max(u.CompletionTokens, 0), out)))
	// pico-dollars to micro-dollars, rounding up.
	return pico/1_000_000 + min(pico%1_000_000, 1)
}

// Zero reports whether p charges nothing at all.
func (p Price) Zero() bool { return p == Price{} }

// USD is a price as configured: US dollars per million tokens.
type USD struct {
	Input       float64 `yaml:"input" json:"input"`
	Output      float64 `yaml:"output" json:"output"`
	CachedInput float64 `yaml:"cached_input" json:"cached_input"`
	CacheWrite  float64 `yaml:"cache_write" json:"cache_write"`
}

// Price converts to micro-dollars per million tokens. A zero CachedInput
// means no discount (the input price) and a zero CacheWrite the input
// price too, so an override need only give input and output.
func (u USD) Price() (Price, error) {
	var p Price
	var err error
	if p.Input, err = micro(u.Input, "input"); err != nil {
		return p, err
	}
	if p.Output, err = micro(u.Output, "output"); err != nil {
		return p, err
	}
	if p.CachedInput, err = micro(u.CachedInput, "cached_input"); err != nil {
		return p, err
	}
	if p.CacheWrite, err = micro(u.CacheWrite, "cache_write"); err != nil {
		return p, err
	}
	if u.CachedInput == 0 {
		p.CachedInput = p.Input
	}
	if u.CacheWrite == 0 {
		p.CacheWrite = p.Input
	}
	return p, nil
}

// maxPrice bounds a configured price so that cost arithmetic stays far
// from overflow: $10,000 per million tokens is 10^10 pico-dollars per
// token, and int64 holds 9.2*10^18, so up to 9*10^8 tokens in a request.
const maxPrice = 10_000.0

func micro(usd float64, field string) (int64, error) {
	if math.IsNaN(usd) || usd < 0 || usd > maxPrice {
		return 0, fmt.Errorf("pricing: %s must be between 0 and %g USD per million tokens, got %v", field, maxPrice, usd)
	}
	// Round to whole micro-dollars per million tokens: float noise
	// (0.075*1e6 = 74999.99999999999) must not lose a unit.
	return int64(math.Round(usd * 1e6)), nil
}

// Override replaces or adds a price.
//
//   - Backend set: applies to that backend only (a self-hosted vLLM, say);
//     Model empty means every model of the backend.
//   - Backend empty, Provider set: the provider's entry for Model.
//   - Both empty: Model at every provider, when the provider's own table has
//     no entry for it.
type Override struct {
	Backend  string `yaml:"backend" json:"backend"`
	Provider string `yaml:"provider" json:"provider"`
	Model    string `yaml:"model" json:"model"`
	USD      `yaml:",inline" json:",inline"`
}

// Table looks prices up. It is immutable and safe for concurrent use.
type Table struct {
	byProvider map[string]map[string]Price
	// own holds, for a provider that serves others' models (see linked),
	// only its own entries and overrides.
	own       map[string]map[string]Price
	anyProv   map[string]Price            // overrides with no provider
	byBackend map[string]map[string]Price // backend → model ("" = all) → price
	// fallback prices every model nothing else prices (override model "*").
	fallback    Price
	hasFallback bool
}

// Fallback is the override model name that sets the price of every model
// without one.
const Fallback = "*"

// linked lists the providers that serve other providers' models at those
// providers' list prices, under the same names, in lookup order. Their
// own entries win.
//
// Vertex AI: Gemini at the Gemini API's paid-tier prices and Claude at
// Anthropic's prices (global endpoints; regional ones cost about 10% more,
// which this table does not model), per
// https://cloud.google.com/vertex-ai/generative-ai/pricing as of
// 2026-12-06, unverified (third-party pages citing it agree).
var linked = map[string][]string{
	"azure":  {"openai"},
	"vertex": {"gemini", "anthropic"},
}

// entry is one model in prices.yaml.
type entry struct {
	USD       `yaml:",inline"`
	Long      *longTier `yaml:"long"`
	Embedding bool      `yaml:"embedding"`
	Source    string    `yaml:"source"`
	Verified  bool      `yaml:"verified"`
	Note      string    `yaml:"note"`
}

type longTier struct {
	Threshold int64 `yaml:"threshold"`
	USD       `yaml:",inline"`
}

type file struct {
	Providers map[string]map[string]entry  `yaml:",inline"`
	Aliases   map[string]map[string]string `yaml:"aliases"`
}

// Entry is an embedded table entry with its provenance, for tests and for
// `weir` to list what it knows.
type Entry struct {
	Provider, Model string
	Price           Price
	Embedding       bool
	Source          string // "<url> as of <YYYY-MM-DD>"
	Verified        bool
	Note            string
}

// URL and AsOf split Source.
func (e Entry) URL() string { u, _, _ := strings.Cut(e.Source, " as of "); return u }

// AsOf is the date the price was checked.
func (e Entry) AsOf() (time.Time, error) {
	_, d, ok := strings.Cut(e.Source, " as of ")
	if !ok {
		return time.Time{}, fmt.Errorf("pricing: source %q has no 'as of' date", e.Source)
	}
	return time.Parse(time.DateOnly, d)
}

// Entries parses the embedded table.
func Entries() ([]Entry, error) {
	es, _, err := parse(embedded)
	return es, err
}

func parse(b []byte) ([]Entry, map[string]map[string]string, error) {
	var f file
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("pricing: %w", err)
	}
	var out []Entry
	for prov, models := range f.Providers {
		if prov == "aliases" {
			continue
		}
		for model, e := range models {
			p, err := e.USD.Price()
			if err != nil {
				return nil, nil, fmt.Errorf("pricing: %s/%s: %w", prov, model, err)
			}
			if e.Long != nil {
				lp, err := e.Long.USD.Price()
				if err != nil {
					return nil, nil, fmt.Errorf("pricing: %s/%s long: %w", prov, model, err)
				}
				p.LongThreshold = e.Long.Threshold
				p.Long = Tier{lp.Input, lp.Output, lp.CachedInput, lp.CacheWrite}
			}
			out = append(out, Entry{Provider: prov, Model: model, Price: p, Embedding: e.Embedding,
				Source: e.Source, Verified: e.Verified, Note: e.Note})
		}
	}
	return out, f.Aliases, nil
}

// Default returns the embedded table. It panics if the embedded file is
// broken, which the package's tests rule out.
func Default() *Table {
	t, err := load(embedded)
	if err != nil {
		panic(err)
	}
	return t
}

func load(b []byte) (*Table, error) {
	es, aliases, err := parse(b)
	if err != nil {
		return nil, err
	}
	t := &Table{byProvider: map[string]map[string]Price{}, anyProv: map[string]Price{}, byBackend: map[string]map[string]Price{}}
	for _, e := range es {
		m := t.byProvider[e.Provider]
		if m == nil {
			m = map[string]Price{}
			t.byProvider[e.Provider] = m
		}
		m[e.Model] = e.Price
	}
	for prov, as := range aliases {
		for alias, target := range as {
			p, ok := t.byProvider[prov][target]
			if !ok {
				return nil, fmt.Errorf("pricing: alias %s/%s names unknown model %q", prov, alias, target)
			}
			t.byProvider[prov][alias] = p
		}
	}
	t.own = map[string]map[string]Price{}
	for prov := range linked {
		t.own[prov] = copyMap(t.byProvider[prov])
	}
	t.link()
	return t, nil
}

// link rebuilds the tables of the linked providers: Azure OpenAI uses the
// OpenAI prices under the same model names (deployments are usually named
// after their model), Vertex the Gemini and Anthropic ones, each plus its
// own.
func (t *Table) link() {
	for prov, from := range linked {
		m := map[string]Price{}
		for i := len(from) - 1; i >= 0; i-- {
			for k, v := range t.byProvider[from[i]] {
				m[k] = v
			}
		}
		for k, v := range t.own[prov] {
			m[k] = v
		}
		t.byProvider[prov] = m
	}
}

// With returns a copy of t with the overrides applied, later overrides
// winning over earlier ones. t is unchanged.
func (t *Table) With(overrides ...Override) (*Table, error) {
	n := &Table{byProvider: map[string]map[string]Price{}, anyProv: map[string]Price{}, byBackend: map[string]map[string]Price{},
		own: map[string]map[string]Price{}, fallback: t.fallback, hasFallback: t.hasFallback}
	for p, m := range t.own {
		n.own[p] = copyMap(m)
	}
	for p, m := range t.byProvider {
		if _, ok := linked[p]; ok {
			continue
		}
		n.byProvider[p] = copyMap(m)
	}
	for k, v := range t.anyProv {
		n.anyProv[k] = v
	}
	for b, m := range t.byBackend {
		n.byBackend[b] = copyMap(m)
	}
	for i, o := range overrides {
		p, err := o.USD.Price()
		if err != nil {
			return nil, fmt.Errorf("pricing: override %d (%s): %w", i, o.label(), err)
		}
		switch {
		case o.Model == Fallback && (o.Provider != "" || o.Backend != ""):
			return nil, fmt.Errorf("pricing: override %d: model %q (the fallback price) takes no provider or backend", i, Fallback)
		case o.Backend != "":
			m := n.byBackend[o.Backend]
			if m == nil {
				m = map[string]Price{}
				n.byBackend[o.Backend] = m
			}
			m[o.Model] = p
		case o.Model == "":
			return nil, fmt.Errorf("pricing: override %d: model is required unless backend is set", i)
		case o.Model == Fallback:
			n.fallback, n.hasFallback = p, true
		case o.Provider == "":
			n.anyProv[o.Model] = p
		default:
			if own := n.own[o.Provider]; own != nil {
				own[o.Model] = p
				continue
			}
			m := n.byProvider[o.Provider]
			if m == nil {
				m = map[string]Price{}
				n.byProvider[o.Provider] = m
			}
			m[o.Model] = p
		}
	}
	// Azure follows OpenAI's overrides too, and Vertex Gemini's and
	// Anthropic's, unless they have their own.
	n.link()
	return n, nil
}

func (o Override) label() string {
	switch {
	case o.Backend != "":
		return "backend " + o.Backend + " model " + o.Model
	case o.Provider != "":
		return o.Provider + "/" + o.Model
	}
	return o.Model
}

func copyMap(m map[string]Price) map[string]Price {
	c := make(map[string]Price, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Lookup finds the price of model at a backend speaking provider. See
// [Table.LookupBackend].
func (t *Table) Lookup(provider, model string) (Price, bool) {
	return t.LookupBackend("", provider, model)
}

// LookupBackend finds the price of model served by the named backend,
// which speaks provider. Order:
//
//  1. the backend's override for the model, then for all its models;
//
//  2. the provider's entry (overrides included), then a model-only override,
//     for each of these names in turn, stopping at the first found:
//     the model as given; without Bedrock's "invoke:" prefix; without a
//     "vendor/" or "models/" prefix; without a Vertex "@version"; for
//     Bedrock ids, without the region and vendor ("us.anthropic."), the
//     ":0" revision and the "-v1" version; without a date suffix
//     ("-2024-07-18", "-20250929", "-05-20") or "-latest"; without a
//     trailing "-preview" or "-exp".
//
//  3. the fallback price (override model "*"), if configured.
//
// Names are case-sensitive. When nothing matches it returns the zero Price
// and false: the model is unpriced. It does not allocate.
func (t *Table) LookupBackend(backend, provider, model string) (Price, bool) {
	if p, ok := t.lookup(backend, provider, model); ok {
		return p, true
	}
	if t.hasFallback {
		return t.fallback, true
	}
	return Price{}, false
}

// Known reports whether model has a price of its own, not just the
// fallback's: config load warns about the models that do not.
func (t *Table) Known(backend, provider, model string) bool {
	_, ok := t.lookup(backend, provider, model)
	return ok
}

// HasFallback reports whether a fallback price is configured.
func (t *Table) HasFallback() bool { return t.hasFallback }

func (t *Table) lookup(backend, provider, model string) (Price, bool) {
	if backend != "" {
		if m := t.byBackend[backend]; m != nil {
			if p, ok := m[model]; ok {
				return p, true
			}
			if p, ok := m[""]; ok {
				return p, true
			}
		}
	}
	pm := t.byProvider[provider]
	try := func(name string) (Price, bool) {
		if p, ok := pm[name]; ok {
			return p, true
		}
		p, ok := t.anyProv[name]
		return p, ok
	}
	c := model
	if p, ok := try(c); ok {
		return p, true
	}
	if v, ok := strings.CutPrefix(c, invokePrefix); ok {
		c = v
		if p, ok := try(c); ok {
			return p, true
		}
	}
	if i := strings.LastIndexByte(c, '/'); i >= 0 {
		c = c[i+1:]
		if p, ok := try(c); ok {
			return p, true
		}
	}
	if i := strings.IndexByte(c, '@'); i >= 0 {
		c = c[:i]
		if p, ok := try(c); ok {
			return p, true
		}
	}
	if b := bedrockBase(c); b != c {
		c = b
		if p, ok := try(c); ok {
			return p, true
		}
	}
	if i := strings.LastIndexByte(c, ':'); i >= 0 {
		c = c[:i]
		if p, ok := try(c); ok {
			return p, true
		}
	}
	if v := stripVersion(c); v != c {
		c = v
		if p, ok := try(c); ok {
			return p, true
		}
	}
	if d := stripDate(c); d != c {
		c = d
		if p, ok := try(c); ok {
			return p, true
		}
	}
	for _, s := range [...]string{"-preview", "-exp"} {
		if strings.HasSuffix(c, s) {
			c = c[:len(c)-len(s)]
			if p, ok := try(c); ok {
				return p, true
			}
		}
	}
	return Price{}, false
}

// invokePrefix selects Bedrock's InvokeModel API (bedrock.InvokePrefix);
// the model id follows it.
const invokePrefix = "invoke:"

// bedrockBase strips a cross-region inference profile's geography
// ("us.", "eu.", "apac.", "global.", ...) and the model's vendor
// ("anthropic.", "amazon.", ...).
func bedrockBase(s string) string {
	for _, g := range [...]string{"us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca."} {
		if strings.HasPrefix(s, g) {
			s = s[len(g):]
			break
		}
	}
	for _, v := range [...]string{"anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "deepseek.", "openai.", "qwen.", "writer."} {
		if strings.HasPrefix(s, v) {
			return s[len(v):]
		}
	}
	return s
}

// stripVersion removes a Bedrock "-v1"-style version suffix.
func stripVersion(s string) string {
	i := strings.LastIndex(s, "-v")
	if i < 0 || i+2 == len(s) || !digits(s[i+2:]) {
		return s
	}
	return s[:i]
}

// stripDate removes "-YYYY-MM-DD", "-YYYYMMDD", "-MM-DD" or "-latest".
func stripDate(s string) string {
	if strings.HasSuffix(s, "-latest") {
		return s[:len(s)-len("-latest")]
	}
	n := len(s)
	// -YYYY-MM-DD
	if n > 11 && s[n-11] == '-' && digits(s[n-10:n-6]) && s[n-6] == '-' && digits(s[n-5:n-3]) && s[n-3] == '-' && digits(s[n-2:]) {
		return s[:n-11]
	}
	// -YYYYMMDD
	if n > 9 && s[n-9] == '-' && digits(s[n-8:]) {
		return s[:n-9]
	}
	// -MM-DD (Gemini previews: gemini-2.5-flash-preview-05-20)
	if n > 6 && s[n-6] == '-' && digits(s[n-5:n-3]) && s[n-3] == '-' && digits(s[n-2:]) {
		return s[:n-6]
	}
	return s
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
