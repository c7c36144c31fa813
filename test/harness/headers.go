package harness

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// headers is Envoy's header map: lower-case keys in order, pseudo-headers
// (":method", ":path", ":authority", ":scheme", ":status") included, and a
// key may repeat.
type headers struct{ kv []kv }

type kv struct{ k, v string }

func (h *headers) get(k string) string {
	for _, e := range h.kv {
		if e.k == k {
			return e.v
		}
	}
	return ""
}

func (h *headers) has(k string) bool {
	for _, e := range h.kv {
		if e.k == k {
			return true
		}
	}
	return false
}

// set overwrites every value of k with one value.
func (h *headers) set(k, v string) {
	h.del(k)
	h.kv = append(h.kv, kv{k, v})
}

func (h *headers) add(k, v string) { h.kv = append(h.kv, kv{k, v}) }

func (h *headers) del(k string) {
	out := h.kv[:0]
	for _, e := range h.kv {
		if e.k != k {
			out = append(out, e)
		}
	}
	h.kv = out
}

func (h *headers) clone() *headers {
	return &headers{kv: append([]kv(nil), h.kv...)}
}

// proto renders the map as Envoy sends it: values only in raw_value.
func (h *headers) proto() *corev3.HeaderMap {
	out := make([]*corev3.HeaderValue, len(h.kv))
	for i, e := range h.kv {
		out[i] = &corev3.HeaderValue{Key: e.k, RawValue: []byte(e.v)}
	}
	return &corev3.HeaderMap{Headers: out}
}

func fromHTTP(src http.Header) *headers {
	h := &headers{}
	for k, vs := range src {
		lk := strings.ToLower(k)
		for _, v := range vs {
			h.add(lk, v)
		}
	}
	return h
}

// errMutation is a header mutation Envoy treats as an error: the request
// ends with a local reply (500).
var errMutation = errors.New("invalid header mutation")

// mutationRules is the subset of HeaderMutationRules Envoy's ext_proc
// checks before applying a mutation [MR, mutation_rules.proto].
type mutationRules struct {
	allowAllRouting bool
	allowEnvoy      bool
	disallowSystem  bool
	disallowAll     bool
	disallowIsError bool
}

func rulesFrom(r *mutationrulesv3.HeaderMutationRules) mutationRules {
	return mutationRules{
		allowAllRouting: r.GetAllowAllRouting().GetValue(),
		allowEnvoy:      r.GetAllowEnvoy().GetValue(),
		disallowSystem:  r.GetDisallowSystem().GetValue(),
		disallowAll:     r.GetDisallowAll().GetValue(),
		disallowIsError: r.GetDisallowIsError().GetValue(),
	}
}

// allowed follows the defaults in mutation_rules.proto: without rules,
// anything except host, :authority, :scheme, :method and x-envoy-* may
// change; allow_all_routing opens the routing headers.
func (r mutationRules) allowed(k string) bool {
	if r.disallowAll {
		return false
	}
	switch {
	case k == "host" || k == ":authority" || k == ":scheme" || k == ":method":
		return r.allowAllRouting
	case strings.HasPrefix(k, "x-envoy-"):
		return r.allowEnvoy
	case strings.HasPrefix(k, ":"):
		return !r.disallowSystem
	}
	return true
}

// validName and validValue follow Envoy's header validation: a mutation
// with a bad character is an error, not a silent skip. Case is not checked:
// names are lower-cased before this.
func validName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == '/' || c == ';' || c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' || c == '{' || c == '}' {
			if !(i == 0 && c == ':') {
				return false
			}
		}
	}
	return true
}

func validValue(v []byte) bool {
	for _, c := range v {
		if c == 0 || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

// applyMutation applies an ext_proc HeaderMutation the way Envoy's
// mutation_utils does. It returns how many entries the rules rejected.
func applyMutation(h *headers, m *extprocv3.HeaderMutation, rules mutationRules, dropContentLength bool) (rejected int, err error) {
	if m == nil {
		return 0, nil
	}
	for _, k := range m.GetRemoveHeaders() {
		lk := strings.ToLower(k)
		// Pseudo-headers and host can never be removed [SVC HeaderMutation].
		if strings.HasPrefix(lk, ":") || lk == "host" || !rules.allowed(lk) {
			rejected++
			if rules.disallowIsError {
				return rejected, fmt.Errorf("%w: remove %q not allowed", errMutation, lk)
			}
			continue
		}
		h.del(lk)
	}
	for _, o := range m.GetSetHeaders() {
		hv := o.GetHeader()
		// Upper-case names are legal (header_utility.cc headerNameIsValid:
		// HTTP/1 semantics allow them) and stored lower-case
		// (mutation_utils.cc builds a LowerCaseString).
		k := strings.ToLower(hv.GetKey())
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			// Envoy rejects a header that sets both [MU; envoy#31555].
			return rejected, fmt.Errorf("%w: %q sets both value and raw_value", errMutation, k)
		}
		// With send_header_raw_value on (the default) Envoy reads only
		// raw_value: a mutation that sets only value writes "".
		v := hv.GetRawValue()
		if !validName(k) || !validValue(v) {
			return rejected, fmt.Errorf("%w: bad header %q", errMutation, k)
		}
		if !rules.allowed(k) {
			rejected++
			if rules.disallowIsError {
				return rejected, fmt.Errorf("%w: set %q not allowed", errMutation, k)
			}
			continue
		}
		if k == "content-length" && dropContentLength {
			continue
		}
		// Only the deprecated append field counts; append_action is
		// ignored by ext_proc [MU; envoy#36982].
		if o.GetAppend().GetValue() {
			h.add(k, string(v))
		} else {
			h.set(k, string(v))
		}
	}
	return rejected, nil
}
