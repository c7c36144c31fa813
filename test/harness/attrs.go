package harness

import (
	"fmt"
	"regexp"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// attrEnv is what an attribute expression can see: the request as the
// filter sees it, and for upstream attempts or responses the host chosen.
type attrEnv struct {
	req      *headers
	id       string
	host     *endpoint // nil before a host is picked
	cluster  string
	route    string
	status   int
	scheme   string
	protocol string
}

// attrFunc evaluates one expression; ok is false when Envoy would omit it
// (a missing header or metadata key fails the CEL lookup).
type attrFunc func(e *attrEnv) (*structpb.Value, bool)

var (
	reHeader  = regexp.MustCompile(`^request\.headers\['([^']+)'\]$`)
	reHostMD  = regexp.MustCompile(`^xds\.upstream_host_metadata\.filter_metadata\['([^']+)'\]\['([^']+)'\]$`)
	reRespHdr = regexp.MustCompile(`^response\.headers\['([^']+)'\]$`)
)

// compileAttr supports the attribute expressions Weir's config uses, in
// the forms listed at
// https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/advanced/attributes.
// An expression outside this subset is a harness error at start-up, so a
// config change can never silently go untested.
func compileAttr(expr string) (attrFunc, error) {
	str := func(f func(e *attrEnv) string) attrFunc {
		return func(e *attrEnv) (*structpb.Value, bool) {
			v := f(e)
			return structpb.NewStringValue(v), true
		}
	}
	switch expr {
	case "request.path":
		return str(func(e *attrEnv) string { return e.req.get(":path") }), nil
	case "request.url_path":
		return str(func(e *attrEnv) string { return pathOnly(e.req.get(":path")) }), nil
	case "request.method":
		return str(func(e *attrEnv) string { return e.req.get(":method") }), nil
	case "request.host":
		return str(func(e *attrEnv) string { return e.req.get(":authority") }), nil
	case "request.scheme":
		return str(func(e *attrEnv) string { return e.scheme }), nil
	case "request.protocol":
		return str(func(e *attrEnv) string { return e.protocol }), nil
	case "request.id":
		return str(func(e *attrEnv) string { return e.id }), nil
	case "xds.cluster_name":
		return func(e *attrEnv) (*structpb.Value, bool) {
			return structpb.NewStringValue(e.cluster), e.cluster != ""
		}, nil
	case "xds.route_name":
		return func(e *attrEnv) (*structpb.Value, bool) {
			return structpb.NewStringValue(e.route), e.route != ""
		}, nil
	case "response.code":
		return func(e *attrEnv) (*structpb.Value, bool) {
			return structpb.NewNumberValue(float64(e.status)), e.status != 0
		}, nil
	}
	if m := reHeader.FindStringSubmatch(expr); m != nil {
		name := m[1]
		return func(e *attrEnv) (*structpb.Value, bool) {
			if !e.req.has(name) {
				return nil, false
			}
			return structpb.NewStringValue(e.req.get(name)), true
		}, nil
	}
	if m := reHostMD.FindStringSubmatch(expr); m != nil {
		ns, key := m[1], m[2]
		return func(e *attrEnv) (*structpb.Value, bool) {
			if e.host == nil {
				return nil, false
			}
			v := e.host.metadata.GetFilterMetadata()[ns].GetFields()[key]
			return v, v != nil
		}, nil
	}
	if reRespHdr.MatchString(expr) {
		return nil, fmt.Errorf("attribute %q: response headers are sent as headers, not attributes, in this harness", expr)
	}
	return nil, fmt.Errorf("attribute %q is not emulated by the harness", expr)
}

func pathOnly(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] == '?' {
			return p[:i]
		}
	}
	return p
}

type attrSet struct {
	exprs []string
	fns   []attrFunc
}

func compileAttrs(exprs []string) (attrSet, error) {
	s := attrSet{exprs: exprs}
	for _, x := range exprs {
		f, err := compileAttr(x)
		if err != nil {
			return attrSet{}, err
		}
		s.fns = append(s.fns, f)
	}
	return s, nil
}

// eval builds ProcessingRequest.attributes: one key, the filter name,
// whose Struct is keyed by the exact expression strings [CC addAttributes].
func (s attrSet) eval(e *attrEnv) map[string]*structpb.Struct {
	if len(s.exprs) == 0 {
		return nil
	}
	f := make(map[string]*structpb.Value, len(s.exprs))
	for i, x := range s.exprs {
		if v, ok := s.fns[i](e); ok {
			f[x] = v
		}
	}
	return map[string]*structpb.Struct{filterExtProc: {Fields: f}}
}

// endpoint is one upstream host of a cluster.
type endpoint struct {
	addr     string // host:port or unix path
	unix     bool
	priority uint32
	metadata *corev3.Metadata
}
