package bench

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// Headers is an ordered HTTP header map, as Envoy holds a request's
// headers: the driver sends it on request_headers messages and applies
// each reply's header_mutation to it, as Envoy would.
type Headers struct {
	kv []headerKV
}

type headerKV struct{ k, v string }

// NewHeaders builds a map from key, value pairs (keys lower case).
func NewHeaders(kv ...string) *Headers {
	h := &Headers{kv: make([]headerKV, 0, len(kv)/2+8)}
	for i := 0; i+1 < len(kv); i += 2 {
		h.kv = append(h.kv, headerKV{kv[i], kv[i+1]})
	}
	return h
}

// Clone returns an independent copy.
func (h *Headers) Clone() *Headers {
	c := &Headers{kv: make([]headerKV, len(h.kv), len(h.kv)+8)}
	copy(c.kv, h.kv)
	return c
}

// Get returns every value of k joined with "," (as Envoy's header match
// input does); ok is false if k is absent.
func (h *Headers) Get(k string) (v string, ok bool) {
	for _, e := range h.kv {
		if e.k == k {
			if ok {
				v += "," + e.v
			} else {
				v, ok = e.v, true
			}
		}
	}
	return v, ok
}

// Set replaces every value of k with v, keeping the position of the first.
func (h *Headers) Set(k, v string) {
	for i, e := range h.kv {
		if e.k == k {
			h.kv[i].v = v
			h.removeFrom(k, i+1)
			return
		}
	}
	h.kv = append(h.kv, headerKV{k, v})
}

// Add appends a value of k.
func (h *Headers) Add(k, v string) { h.kv = append(h.kv, headerKV{k, v}) }

// Remove deletes every value of k.
func (h *Headers) Remove(k string) { h.removeFrom(k, 0) }

func (h *Headers) removeFrom(k string, from int) {
	out := h.kv[:from]
	for _, e := range h.kv[from:] {
		if e.k != k {
			out = append(out, e)
		}
	}
	h.kv = out
}

// Len is the number of header entries.
func (h *Headers) Len() int { return len(h.kv) }

// Proto is the map as Envoy sends it (raw_value).
func (h *Headers) Proto() *corev3.HeaderMap {
	hm := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, len(h.kv))}
	for i, e := range h.kv {
		hm.Headers[i] = &corev3.HeaderValue{Key: e.k, RawValue: []byte(e.v)}
	}
	return hm
}

// Apply applies an ext_proc header mutation as Envoy's ext_proc does
// (mutation_utils.cc applyHeaderMutations): removals first, then each
// set_headers entry, which overwrites unless append is true.
func (h *Headers) Apply(m *extprocv3.HeaderMutation) error {
	for _, k := range m.GetRemoveHeaders() {
		h.Remove(strings.ToLower(k))
	}
	for _, o := range m.GetSetHeaders() {
		k := strings.ToLower(o.GetHeader().GetKey())
		if k == "" {
			return fmt.Errorf("set_headers entry without a key")
		}
		v := string(o.GetHeader().GetRawValue())
		if v == "" {
			v = o.GetHeader().GetValue()
		}
		if o.GetAppend().GetValue() {
			h.Add(k, v)
		} else {
			h.Set(k, v)
		}
	}
	return nil
}
