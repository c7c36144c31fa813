// Package storedid binds the ids of objects a provider stores for Weir
// (Responses API responses) to the virtual key whose request created them.
//
// Every key shares Weir's provider account, so a response id issued to one
// key names an object any key could ask the provider to continue from
// (previous_response_id). Weir therefore never hands a client the
// provider's id: it hands out the id with a tag appended, an HMAC of the
// key's hash and the id under a secret every replica shares,
//
//	resp_68af…c2 -> resp_68af…c2_w<32 hex digits>
//
// and on the way in accepts only an id whose tag matches the key sending
// it, stripping the tag before the provider sees it. The scheme keeps no
// state: any replica checks any id, nothing is stored per response, and
// an id of another key, a forged one and one that never existed are
// indistinguishable (all "not found"). The provider's prefix stays in
// front, so SDKs that look at it are not confused.
package storedid

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/sse"
)

// Owner is who a stored id belongs to: a key's hash, or the zero Owner
// for requests without a key (open mode), which share their ids.
type Owner [32]byte

// Sealer tags and checks ids. It is immutable and safe for concurrent
// use.
type Sealer struct{ secret []byte }

// New returns a Sealer keyed by secret (config responses.id_secret).
func New(secret string) *Sealer { return &Sealer{secret: []byte(secret)} }

// LogValue implements [slog.LogValuer]: the secret never prints.
func (s *Sealer) LogValue() slog.Value { return slog.StringValue("storedid.Sealer([redacted])") }

// sep ends the provider's id in a sealed id; tagHex is the tag's length in
// hex digits (128 bits of HMAC-SHA256: forging one takes 2^128 tries).
const (
	sep    = "_w"
	tagHex = 32
	// domain separates these tags from any other use of the secret.
	domain = "weir stored id v1\x00"
)

func (s *Sealer) tag(o Owner, id string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(domain))
	m.Write(o[:])
	m.Write([]byte(id))
	return m.Sum(nil)[:tagHex/2]
}

// Seal returns id bound to o.
func (s *Sealer) Seal(o Owner, id string) string {
	t := s.tag(o, id)
	b := make([]byte, 0, len(id)+len(sep)+tagHex)
	b = append(b, id...)
	b = append(b, sep...)
	return string(hex.AppendEncode(b, t))
}

// Open returns the provider's id inside sealed if sealed is bound to o.
// Any other input (another owner's id, an unsealed or malformed one) is
// not ok, and the comparison takes the same time whichever it is.
func (s *Sealer) Open(o Owner, sealed string) (string, bool) {
	n := len(sealed) - len(sep) - tagHex
	if n <= 0 || sealed[n:n+len(sep)] != sep {
		return "", false
	}
	var want [tagHex / 2]byte
	if _, err := hex.Decode(want[:], []byte(sealed[n+len(sep):])); err != nil {
		return "", false
	}
	id := sealed[:n]
	if !hmac.Equal(s.tag(o, id), want[:]) {
		return "", false
	}
	return id, true
}

// idFields are the fields of a Responses API response object that carry
// a response id: its own, and the one it continued from (the provider
// echoes the id it was sent, which is the client's own id sealed again).
var idFields = [...]string{"id", "previous_response_id"}

// SealResponse seals the response ids of a response object: the body of
// a buffered POST /v1/responses reply (prefix ""), or the "response"
// member of a stream event (prefix "response."). Anything else is
// returned as it is.
func (s *Sealer) SealResponse(body []byte, o Owner, prefix string) []byte {
	if gjson.GetBytes(body, prefix+"object").Str != "response" {
		return body
	}
	for _, f := range idFields {
		v := gjson.GetBytes(body, prefix+f)
		if v.Type != gjson.String || v.Str == "" {
			continue
		}
		if out, err := sjson.SetBytes(body, prefix+f, s.Seal(o, v.Str)); err == nil {
			body = out
		}
	}
	return body
}

// Stream seals the response ids in every event of a Responses API
// stream: response.created, .in_progress, .completed and the other
// lifecycle events each carry the whole response object. It wraps the
// backend's stream translator and re-frames its output event by event.
type Stream struct {
	inner provider.Stream
	s     *Sealer
	o     Owner
	p     sse.Parser
	tmp   []byte
	name  string // the last event name, reused: deltas repeat theirs
}

// NewStream wraps inner.
func (s *Sealer) NewStream(inner provider.Stream, o Owner) *Stream {
	return &Stream{inner: inner, s: s, o: o}
}

// Translate implements [provider.Stream].
func (st *Stream) Translate(dst, chunk []byte, eos bool) ([]byte, error) {
	out, err := st.inner.Translate(st.tmp[:0], chunk, eos)
	st.tmp = out
	if ferr := st.p.Feed(out); ferr != nil {
		return dst, ferr
	}
	for {
		ev, ok := st.p.Next()
		if !ok {
			break
		}
		dst = st.event(dst, ev)
	}
	if eos {
		if ev, ok := st.p.Flush(); ok {
			dst = st.event(dst, ev)
		}
	}
	return dst, err
}

func (st *Stream) event(dst []byte, ev sse.Event) []byte {
	if len(ev.Name) == 0 && len(ev.Data) == 0 {
		return dst // a comment or keep-alive
	}
	data := ev.Data
	// Only lifecycle events embed the response object; the substring test
	// spares the deltas a JSON lookup.
	if len(data) > 0 && data[0] == '{' && bytes.Contains(data, responseMember) {
		data = st.s.SealResponse(data, st.o, "response.")
	}
	if string(ev.Name) != st.name {
		st.name = string(ev.Name)
	}
	return sse.AppendEvent(dst, st.name, data)
}

var responseMember = []byte(`"response":`)

// Usage implements [provider.Stream].
func (st *Stream) Usage() provider.Usage { return st.inner.Usage() }
