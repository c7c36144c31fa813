package extproc

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/runtime"
)

// Which headers cross the gateway. Both directions are allow-lists, so a
// header nobody thought of stays on its side: a provider account,
// project, billing or beta selector a client sends never reaches the
// provider under Weir's credential, and a provider's account, region,
// request-id or rate-limit header never reaches a client. README
// "Headers that cross the gateway" documents the lists.
//
// Envoy forwards every request header the ext_proc does not remove, so
// the removals are computed from the headers Envoy sent (request_header_mode
// SEND) against the backend's allow-list.

// keptRequestHeader reports whether a request header is Envoy's or Weir's
// to manage, never removed for any backend:
//   - pseudo-headers and host cannot be removed (ext_proc mutation rules:
//     "Pseudo-headers and host cannot be removed"; the harness emulates it
//     in test/harness/headers.go applyMutation);
//   - x-envoy-* may not be changed without allow_envoy, which the generated
//     filters do not set, and the HCM strips them from external clients
//     (use_remote_address);
//   - content-length describes the body Envoy holds and checks against the
//     body Weir sends (processor_state.cc validateContentLength); Weir sets
//     it whenever it changes the body;
//   - x-request-id is Envoy's own (regenerated for external clients), read
//     from the map by its access log and tracing.
func keptRequestHeader(name string) bool {
	switch name {
	case "host", "content-length", config.HeaderRequestID:
		return true
	}
	return strings.HasPrefix(name, ":") || strings.HasPrefix(name, "x-envoy-")
}

// requestRemovals lists the headers of hm that may not reach be: every
// name not kept for Envoy, not on be's allow-list (its provider's default
// and its forward_headers) and not set by the same reply. Removing only
// what is not also set keeps the result independent of the order Envoy
// applies removals and sets in. Credentials, cookies and every x-weir-*
// a client could still send are never on an allow-list (config validation
// refuses them), so they go too.
func requestRemovals(hm *corev3.HeaderMap, be *runtime.Backend, set []*corev3.HeaderValueOption) []string {
	var out []string
	hs := hm.GetHeaders()
	for i, h := range hs {
		k := h.GetKey()
		if keptRequestHeader(k) || be.Forward.Has(k) || setsName(set, k) || contains(out, k) {
			continue
		}
		out = appendRemoval(out, k, len(hs)-i)
	}
	return out
}

// appendRemoval appends name, sizing the list once for the left headers
// that could follow (one allocation per reply, not one per doubling).
func appendRemoval(out []string, name string, left int) []string {
	if out == nil {
		out = make([]string, 0, left)
	}
	return append(out, name)
}

// exposedByDefault are the provider response headers every client sees:
// the representation (type, length, encoding, caching of an event
// stream) and the provider's retry hint, which SDKs honour to back off
// (retry-after-ms is OpenAI's and Azure's finer one), and the date. Envoy
// writes its own server header after the filters.
func exposedByDefault(name string) bool {
	switch name {
	case "content-type", "content-length", "content-encoding", "cache-control", "retry-after", "retry-after-ms", "date":
		return true
	}
	return false
}

// responseRemovals lists the response headers of hm a client may not see:
// every name not exposed by default, not in be's expose_headers (be may
// be nil: a reply Envoy made itself) and not set by Weir in the same
// mutation, which thereby replaces the provider's value (its own
// x-ratelimit-* and x-request-id). Pseudo-headers and x-envoy-* are
// Envoy's, as for requests.
func responseRemovals(hm *corev3.HeaderMap, be *runtime.Backend, set []*corev3.HeaderValueOption) []string {
	var out []string
	hs := hm.GetHeaders()
	for i, h := range hs {
		k := h.GetKey()
		if strings.HasPrefix(k, ":") || strings.HasPrefix(k, "x-envoy-") || exposedByDefault(k) ||
			(be != nil && be.Expose.Has(k)) || setsName(set, k) || contains(out, k) {
			continue
		}
		// One more slot: a stream's reply adds content-length.
		out = appendRemoval(out, k, len(hs)-i+1)
	}
	return out
}

func setsName(set []*corev3.HeaderValueOption, name string) bool {
	for _, o := range set {
		if o.GetHeader().GetKey() == name {
			return true
		}
	}
	return false
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
