// Package tokens counts the prompt tokens of a request before it goes
// upstream: exactly, with OpenAI's BPE encodings (cl100k_base, o200k_base)
// whose ranks are compiled into the binary, or as a cheap upper bound.
//
// # Memory
//
// The rank tables are large (cl100k_base about 100k entries, o200k_base
// about 200k). Each is built into a map on first use, guarded by a
// sync.Once, so a gateway that never counts tokens exactly, or only for
// one encoding, pays nothing (or half). TestEncodingMemory measures the
// cost of each in a fresh process; the figures are in README.md.
//
// # What is counted
//
// [BPE.Count] reads a chat request body (OpenAI or Anthropic shape) with
// gjson and counts the text a model sees, as OpenAI's cookbook
// (num_tokens_from_messages) does:
//
//   - per message: 3 tokens of overhead, plus the role, plus the content
//     (a string, or the text of each text part; Anthropic tool_use inputs
//     and tool_result contents too), plus the name and 1 more token when a
//     name is given, plus each tool call's function name and arguments;
//   - the top-level "system" (Anthropic: a string or text blocks);
//   - each tool definition, as its JSON text: OpenAI renders tools in a
//     syntax of its own that is usually shorter, so this over-counts a
//     little, which is the safe side for a reservation;
//   - 3 tokens priming the reply;
//   - for embeddings and legacy completions, the "input" or "prompt"
//     string(s), without overhead.
//
// Images, audio and files count nothing: their token cost depends on the
// provider and on fields (detail, resolution) that are out of scope here;
// settling corrects the reservation.
package tokens

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/weir-ai/weir/extproc/errs"
)

// Estimator counts the prompt tokens of a request body.
type Estimator interface {
	// Count returns the number of prompt tokens body's model will see (or
	// an upper bound of it, as documented by the implementation). An
	// invalid body is an error wrapping errs.ErrInvalidJSON.
	Count(body []byte) (int, error)
}

// Encoding names a BPE encoding.
type Encoding string

const (
	Cl100kBase Encoding = "cl100k_base" // gpt-4, gpt-3.5-turbo, text-embedding-3-*, ada-002
	O200kBase  Encoding = "o200k_base"  // gpt-4o, gpt-4.1, o1/o3/o4, gpt-5
)

// Tokenizer counts tokens of text in one encoding. It is safe for
// concurrent use.
type Tokenizer struct {
	enc   Encoding
	codec *codec.Codec
}

var (
	cl100kOnce, o200kOnce sync.Once
	cl100k, o200k         *Tokenizer
)

// Get returns the tokenizer for enc, loading its ranks on first use.
func Get(enc Encoding) (*Tokenizer, error) {
	switch enc {
	case Cl100kBase:
		cl100kOnce.Do(func() { cl100k = &Tokenizer{enc, codec.NewCl100kBase()} })
		return cl100k, nil
	case O200kBase:
		o200kOnce.Do(func() { o200k = &Tokenizer{enc, codec.NewO200kBase()} })
		return o200k, nil
	}
	return nil, fmt.Errorf("tokens: unknown encoding %q (known: cl100k_base, o200k_base)", enc)
}

// Must is [Get] for a known encoding constant.
func Must(enc Encoding) *Tokenizer {
	t, err := Get(enc)
	if err != nil {
		panic(err)
	}
	return t
}

// Encoding is t's encoding.
func (t *Tokenizer) Encoding() Encoding { return t.enc }

// Count returns the number of tokens in s, as tiktoken's encode_ordinary
// would produce: special tokens such as <|endoftext|> in s are plain text.
func (t *Tokenizer) Count(s string) int {
	if s == "" {
		return 0
	}
	// With the default error mode the codec never fails: its regexp has no
	// timeout set, and invalid UTF-8 is tokenised byte by byte.
	n, err := t.codec.Count(s)
	if err != nil {
		return len(s) // a byte-level BPE token covers at least one byte
	}
	return n
}

// EncodingFor returns the encoding of an OpenAI model, by name prefix
// after any "provider/" prefix and dated suffix:
//
//   - o200k_base: gpt-4o, chatgpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4;
//   - cl100k_base: gpt-4 (and gpt-4-turbo), gpt-3.5, text-embedding-3-*,
//     text-embedding-ada-002;
//   - o200k_base for every other model, Claude, Gemini, Nova, Llama and
//     self-hosted models included. Their tokenizers are not public (or not
//     embedded here), so this is an approximation: Anthropic's tokenizer,
//     for one, produces somewhat more tokens than o200k for the same
//     English text. Reservations are corrected when the request settles;
//     a context-window check for those models should keep a margin.
func EncodingFor(model string) Encoding {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	switch {
	case strings.HasPrefix(model, "gpt-4o"), strings.HasPrefix(model, "chatgpt-4o"),
		strings.HasPrefix(model, "gpt-4.1"), strings.HasPrefix(model, "gpt-4.5"),
		strings.HasPrefix(model, "gpt-5"),
		isOSeries(model):
		return O200kBase
	case strings.HasPrefix(model, "gpt-4"), strings.HasPrefix(model, "gpt-3.5"), strings.HasPrefix(model, "gpt-35"),
		strings.HasPrefix(model, "text-embedding-3"), strings.HasPrefix(model, "text-embedding-ada-002"):
		return Cl100kBase
	}
	return O200kBase
}

// isOSeries matches o1, o3, o4-mini, o1-preview-2024-09-12, ...
func isOSeries(m string) bool {
	return len(m) >= 2 && m[0] == 'o' && m[1] >= '1' && m[1] <= '9' && (len(m) == 2 || m[2] == '-')
}

// Overheads from OpenAI's cookbook (num_tokens_from_messages) for every
// chat model since gpt-3.5-turbo-0613.
const (
	PerMessage = 3 // <|start|>{role/name}\n{content}<|end|>\n
	PerName    = 1 // a message's "name" replaces the role token and adds one
	Priming    = 3 // every reply is primed with <|start|>assistant<|message|>
)

// BPE counts exactly with a tokenizer (see the package doc for what is
// counted). It loads its encoding on first use.
type BPE struct {
	Encoding Encoding // zero: o200k_base
}

// ForModel returns the exact estimator for model ([EncodingFor]).
func ForModel(model string) BPE { return BPE{Encoding: EncodingFor(model)} }

// Count implements [Estimator].
func (b BPE) Count(body []byte) (int, error) {
	enc := b.Encoding
	if enc == "" {
		enc = O200kBase
	}
	t, err := Get(enc)
	if err != nil {
		return 0, err
	}
	return t.CountRequest(body)
}

// CountRequest counts the prompt tokens of a request body with t.
func (t *Tokenizer) CountRequest(body []byte) (int, error) {
	// The body outlives this call, and no result outlives it: reading it
	// as a string avoids gjson's copy.
	s := bytesToString(body)
	if !gjson.Valid(s) {
		return 0, fmt.Errorf("%w: cannot count its tokens", errs.ErrInvalidJSON)
	}
	root := gjson.Parse(s)
	if !root.IsObject() {
		return 0, fmt.Errorf("%w: the body must be a JSON object", errs.ErrInvalidRequest)
	}
	n := 0
	msgs := root.Get("messages")
	if msgs.IsArray() {
		msgs.ForEach(func(_, m gjson.Result) bool {
			if !m.IsObject() {
				return true
			}
			n += PerMessage
			m.ForEach(func(k, v gjson.Result) bool {
				switch k.Str {
				case "role":
					n += t.Count(v.Str)
				case "name":
					n += t.Count(v.Str) + PerName
				case "content":
					n += t.content(v)
				case "tool_calls":
					v.ForEach(func(_, c gjson.Result) bool {
						n += t.Count(c.Get("function.name").Str) + t.Count(c.Get("function.arguments").Str)
						return true
					})
				}
				return true
			})
			return true
		})
		n += Priming
	}
	if sys := root.Get("system"); sys.Exists() {
		n += t.content(sys)
	}
	if tools := root.Get("tools"); tools.IsArray() {
		tools.ForEach(func(_, tool gjson.Result) bool {
			n += t.Count(tool.Raw)
			return true
		})
	}
	if !msgs.Exists() {
		for _, f := range [...]string{"input", "prompt"} {
			if v := root.Get(f); v.Exists() {
				n += t.texts(v)
				break
			}
		}
	}
	return n, nil
}

// content counts a message content: a string, or an array of parts.
func (t *Tokenizer) content(v gjson.Result) int {
	switch {
	case v.Type == gjson.String:
		return t.Count(v.Str)
	case v.IsArray():
		n := 0
		v.ForEach(func(_, p gjson.Result) bool {
			switch {
			case p.Type == gjson.String:
				n += t.Count(p.Str)
			case p.IsObject():
				if tx := p.Get("text"); tx.Type == gjson.String {
					n += t.Count(tx.Str)
				}
				switch p.Get("type").Str {
				case "tool_use": // Anthropic
					n += t.Count(p.Get("name").Str) + t.Count(p.Get("input").Raw)
				case "tool_result":
					n += t.content(p.Get("content"))
				}
			}
			return true
		})
		return n
	}
	return 0
}

// texts counts a string or an array of strings (embeddings input). Token
// id arrays count one per id.
func (t *Tokenizer) texts(v gjson.Result) int {
	switch {
	case v.Type == gjson.String:
		return t.Count(v.Str)
	case v.IsArray():
		n := 0
		v.ForEach(func(_, e gjson.Result) bool {
			switch {
			case e.Type == gjson.String:
				n += t.Count(e.Str)
			case e.Type == gjson.Number:
				n++
			case e.IsArray():
				n += len(e.Array())
			}
			return true
		})
		return n
	}
	return 0
}

func bytesToString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// UpperBound estimates without parsing or tokenizing: the body's length
// divided by BytesPerToken, plus [Priming]. It is O(1) and allocates
// nothing, for reservations where settling corrects the estimate.
//
//   - BytesPerToken 1 is a strict upper bound of what [BPE] counts, for
//     any body: a byte-level BPE token covers at least one byte of text,
//     every counted text is at most as long as its JSON, and each
//     message's JSON ({"role":"x"} is 12 bytes) is longer than its fixed
//     overhead. It is about four times the real count for English.
//   - BytesPerToken 3 (the zero value's) bounds ordinary text: English
//     averages about 4 bytes per token, CJK about 3, and the JSON around
//     the text adds bytes that count nothing. Adversarial text (digits
//     separated by spaces, emoji, random Unicode) can exceed it.
type UpperBound struct {
	BytesPerToken int
}

// Count implements [Estimator]. It does not validate the body.
func (u UpperBound) Count(body []byte) (int, error) {
	d := u.BytesPerToken
	if d <= 0 {
		d = 3
	}
	return (len(body)+d-1)/d + Priming, nil
}
