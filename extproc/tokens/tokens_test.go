package tokens

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/weir-ai/weir/extproc/errs"
)

// cookbook is the example of OpenAI's cookbook "How to count tokens with
// tiktoken" (num_tokens_from_messages), which reports 129 prompt tokens
// for gpt-3.5-turbo and gpt-4 (cl100k_base) and 124 for gpt-4o and
// gpt-4o-mini (o200k_base), as the API's usage did.
const cookbook = `{"model":"gpt-4","messages":[
{"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
{"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
{"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
{"role": "system", "name": "example_user", "content": "Let's circle back when we have more time to touch base on opportunities for increased leverage."},
{"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
{"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."}]}`

func TestCookbook(t *testing.T) {
	for _, tc := range []struct {
		model string
		want  int
	}{{"gpt-3.5-turbo-0613", 129}, {"gpt-4-0613", 129}, {"gpt-4o", 124}, {"gpt-4o-mini", 124}} {
		n, err := ForModel(tc.model).Count([]byte(cookbook))
		if err != nil || n != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.model, n, err, tc.want)
		}
	}
}

func TestKnownIDs(t *testing.T) {
	// tiktoken's README: cl100k_base encodes "tiktoken is great!" as these.
	ids, _, err := codec.NewCl100kBase().Encode("tiktoken is great!")
	if err != nil || !slices.Equal(ids, []uint{83, 1609, 5963, 374, 2294, 0}) {
		t.Fatalf("ids %v, %v", ids, err)
	}
}

func TestCountText(t *testing.T) {
	// Expected counts were produced by this tokenizer and agree with
	// tiktoken for the cases whose ids are published (above).
	for _, tc := range []struct {
		s             string
		cl100k, o200k int
	}{
		{"", 0, 0},
		{"hello world", 2, 2},
		{"tiktoken is great!", 6, 6},
		{"antidisestablishmentarianism", 6, 6},
		{"日本語のテキスト", 8, 6},
		{"Hello, world! 123456789", 8, 8},
		{" <|endoftext|>", 6, 7}, // special tokens are plain text
		{"\xff\xfe", 1, 1},       // invalid UTF-8: byte-level tokens
	} {
		if n := Must(Cl100kBase).Count(tc.s); n != tc.cl100k {
			t.Errorf("cl100k %q = %d, want %d", tc.s, n, tc.cl100k)
		}
		if n := Must(O200kBase).Count(tc.s); n != tc.o200k {
			t.Errorf("o200k %q = %d, want %d", tc.s, n, tc.o200k)
		}
	}
}

func TestEncodingFor(t *testing.T) {
	for m, want := range map[string]Encoding{
		"gpt-4o": O200kBase, "gpt-4o-mini-2024-07-18": O200kBase, "openai/gpt-4.1-nano": O200kBase,
		"o1": O200kBase, "o3-mini": O200kBase, "o4-mini-2025-04-16": O200kBase, "gpt-5": O200kBase,
		"chatgpt-4o-latest": O200kBase,
		"gpt-4":             Cl100kBase, "gpt-4-turbo": Cl100kBase, "gpt-4-0613": Cl100kBase, "gpt-3.5-turbo": Cl100kBase,
		"gpt-35-turbo": Cl100kBase, "text-embedding-3-small": Cl100kBase, "text-embedding-ada-002": Cl100kBase,
		"claude-sonnet-4-5": O200kBase, "gemini-2.5-pro": O200kBase, "llama-3-70b": O200kBase,
		"omni-model": O200kBase, "o": O200kBase,
	} {
		if got := EncodingFor(m); got != want {
			t.Errorf("EncodingFor(%q) = %s, want %s", m, got, want)
		}
	}
	if _, err := Get("p50k_base"); err == nil {
		t.Error("unknown encoding must fail")
	}
}

func TestCountRequest(t *testing.T) {
	o := Must(O200kBase)
	c := o.Count
	tests := []struct {
		name string
		body string
		want int
	}{
		{"string content", `{"messages":[{"role":"user","content":"hello world"}]}`,
			PerMessage + c("user") + c("hello world") + Priming},
		{"text parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"data:..."}},{"type":"text","text":" world"}]}]}`,
			PerMessage + c("user") + c("hello") + c(" world") + Priming},
		{"name", `{"messages":[{"role":"user","name":"bob","content":"hi"}]}`,
			PerMessage + c("user") + c("bob") + PerName + c("hi") + Priming},
		{"tool calls", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"x","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]}]}`,
			PerMessage + c("assistant") + c("get_weather") + c(`{"city":"Paris"}`) + Priming},
		{"tools", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}`,
			PerMessage + c("user") + c("hi") + Priming + c(`{"type":"function","function":{"name":"f","parameters":{}}}`)},
		{"anthropic system and blocks", `{"system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"tool_result","tool_use_id":"t","content":"42"}]},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"calc","input":{"x":1}}]}]}`,
			c("be brief") + 2*PerMessage + c("user") + c("hi") + c("42") + c("assistant") + c("calc") + c(`{"x":1}`) + Priming},
		{"anthropic system string", `{"system":"be brief","messages":[]}`, c("be brief") + Priming},
		{"embeddings string", `{"model":"text-embedding-3-small","input":"hello world"}`, c("hello world")},
		{"embeddings array", `{"input":["hello","world"]}`, c("hello") + c("world")},
		{"embeddings ids", `{"input":[[1,2,3],[4]]}`, 4},
		{"legacy prompt", `{"prompt":"hello"}`, c("hello")},
		{"escapes", `{"messages":[{"role":"user","content":"caf\u00e9 \"quoted\""}]}`,
			PerMessage + c("user") + c(`café "quoted"`) + Priming},
		{"non-object messages skipped", `{"messages":[1,"x",null]}`, Priming},
		{"empty object", `{}`, 0},
	}
	for _, tc := range tests {
		n, err := o.CountRequest([]byte(tc.body))
		if err != nil || n != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.name, n, err, tc.want)
		}
	}
	for _, bad := range []string{``, `{`, `{"messages":[}`, `nope`} {
		if _, err := o.CountRequest([]byte(bad)); !errors.Is(err, errs.ErrInvalidJSON) {
			t.Errorf("%q: err %v, want ErrInvalidJSON", bad, err)
		}
	}
	if _, err := o.CountRequest([]byte(`[1,2]`)); !errors.Is(err, errs.ErrInvalidRequest) {
		t.Errorf("array body: %v", err)
	}
}

func TestUpperBound(t *testing.T) {
	b := []byte(cookbook)
	exact, _ := BPE{Cl100kBase}.Count(b)
	for _, d := range []int{0, 1, 3} {
		n, err := UpperBound{BytesPerToken: d}.Count(b)
		if err != nil || n < exact {
			t.Errorf("UpperBound{%d} = %d, %v; exact %d", d, n, err, exact)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = UpperBound{}.Count(b) }); n != 0 {
		t.Errorf("UpperBound allocates %v", n)
	}
}

// FuzzCount: never panics; an error is always ErrInvalidJSON or
// ErrInvalidRequest; the strict upper bound holds for every body.
func FuzzCount(f *testing.F) {
	f.Add([]byte(cookbook))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{}]}`))
	f.Add([]byte(`{"system":[{"type":"text","text":"x"}],"messages":[{"content":[{"type":"tool_result","content":[{"type":"text","text":"y"}]}]}]}`))
	f.Add([]byte(`{"input":[[1,2],"a",3]}`))
	f.Add([]byte(`{"messages":[{},{},{}]}`))
	f.Add([]byte("{\"messages\":[{\"role\":\"\xff\xfe\",\"content\":\"\\ud800\"}]}"))
	o := Must(O200kBase)
	cl := Must(Cl100kBase)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, tok := range []*Tokenizer{o, cl} {
			n, err := tok.CountRequest(body)
			if err != nil {
				if !errors.Is(err, errs.ErrInvalidJSON) && !errors.Is(err, errs.ErrInvalidRequest) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			if n < 0 {
				t.Fatalf("negative count %d", n)
			}
			if ub, _ := (UpperBound{BytesPerToken: 1}).Count(body); n > ub {
				t.Fatalf("%s: count %d above the strict bound %d for %q", tok.Encoding(), n, ub, body)
			}
		}
	})
}

// TestEncodingMemory measures, in a fresh process per encoding, what
// loading it costs: live heap after a GC, and the process's RSS. Run with
// -v to see the figures.
func TestEncodingMemory(t *testing.T) {
	if enc := os.Getenv("WEIR_TOKENS_MEM_CHILD"); enc != "" {
		memChild(Encoding(enc))
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, enc := range []Encoding{"", Cl100kBase, O200kBase, "both"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEncodingMemory$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WEIR_TOKENS_MEM_CHILD="+string(enc)+"_")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", enc, err, out)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "MEM ") {
				t.Log(strings.TrimPrefix(sc.Text(), "MEM "))
			}
		}
	}
}

func memChild(enc Encoding) {
	enc = Encoding(strings.TrimSuffix(string(enc), "_"))
	before := heapAfterGC()
	rssBefore := rss()
	switch enc {
	case "":
	case "both":
		Must(Cl100kBase).Count("warm up")
		Must(O200kBase).Count("warm up")
	default:
		Must(enc).Count("warm up")
	}
	after := heapAfterGC()
	name := string(enc)
	if name == "" {
		name = "none"
	}
	fmt.Printf("MEM %-12s live heap +%5.1f MiB (%.1f MiB total), RSS %5.1f MiB -> %5.1f MiB\n",
		name, mib(after-before), mib(after), mib(rssBefore), mib(rss()))
}

func heapAfterGC() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(b uint64) float64 { return float64(int64(b)) / (1 << 20) }

var benchBody = []byte(cookbook)

func BenchmarkBPECount(b *testing.B) {
	for _, enc := range []Encoding{Cl100kBase, O200kBase} {
		est := BPE{Encoding: enc}
		_, _ = est.Count(benchBody)
		b.Run(string(enc), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchBody)))
			for b.Loop() {
				_, _ = est.Count(benchBody)
			}
		})
	}
}

func BenchmarkUpperBound(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = UpperBound{}.Count(benchBody)
	}
}
