package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	skipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/matcher/action/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typematcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wrapped is a match_delegate around an ext_proc with one skip predicate,
// edited by mod.
func wrapped(t *testing.T, mod func(*matchingv3.ExtensionWithMatcher, *xdsmatcherv3.Matcher_MatcherList_FieldMatcher)) *hcmv3.HttpFilter {
	fm := &xdsmatcherv3.Matcher_MatcherList_FieldMatcher{
		Predicate: &xdsmatcherv3.Matcher_MatcherList_Predicate{MatchType: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_{
			SinglePredicate: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate{
				Input: &xdscorev3.TypedExtensionConfig{Name: "h", TypedConfig: mustAny(t, &typematcherv3.HttpRequestHeaderMatchInput{HeaderName: "X-Weir-Backend"})},
				Matcher: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch{
					ValueMatch: &xdsmatcherv3.StringMatcher{MatchPattern: &xdsmatcherv3.StringMatcher_Exact{Exact: "openai"}},
				},
			},
		}},
		OnMatch: &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{
			Action: &xdscorev3.TypedExtensionConfig{Name: "skip", TypedConfig: mustAny(t, &skipv3.SkipFilter{})},
		}},
	}
	ewm := &matchingv3.ExtensionWithMatcher{
		ExtensionConfig: &corev3.TypedExtensionConfig{Name: xds.FilterExtProc, TypedConfig: mustAny(t, &extprocfilterv3.ExternalProcessor{})},
		XdsMatcher: &xdsmatcherv3.Matcher{MatcherType: &xdsmatcherv3.Matcher_MatcherList_{MatcherList: &xdsmatcherv3.Matcher_MatcherList{
			Matchers: []*xdsmatcherv3.Matcher_MatcherList_FieldMatcher{fm},
		}}},
	}
	if mod != nil {
		mod(ewm, fm)
	}
	return &hcmv3.HttpFilter{Name: xds.MatchDelegate, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, ewm)}}
}

func TestSkipMatcher(t *testing.T) {
	_, m, err := findExtProc([]*hcmv3.HttpFilter{wrapped(t, nil)})
	if err != nil || m == nil || *m != (SkipMatcher{Header: "x-weir-backend", Exact: "openai"}) {
		t.Fatalf("got %+v, %v", m, err)
	}
	for _, c := range []struct {
		h    *Headers
		skip bool
	}{
		{NewHeaders(":path", "/"), false},                                      // absent: no data, no match: the filter runs
		{NewHeaders("x-weir-backend", "openai"), true},                         //
		{NewHeaders("x-weir-backend", "openai-2"), false},                      // exact
		{NewHeaders("x-weir-backend", "openai", "x-weir-backend", "x"), false}, // values joined with ","
	} {
		if got := m.Skips(c.h); got != c.skip {
			t.Errorf("%v: skips %v, want %v", c.h.kv, got, c.skip)
		}
	}
	pm := &SkipMatcher{Header: "x-weir-backend", Prefix: "open"}
	if !pm.Skips(NewHeaders("x-weir-backend", "openai-2")) || pm.Skips(NewHeaders("x-weir-backend", "anthropic")) {
		t.Error("prefix matcher")
	}

	refuse := map[string]func(*matchingv3.ExtensionWithMatcher, *xdsmatcherv3.Matcher_MatcherList_FieldMatcher){
		"two field matchers": func(e *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			l := e.XdsMatcher.GetMatcherList()
			l.Matchers = append(l.Matchers, fm)
		},
		"on_no_match": func(e *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			e.XdsMatcher.OnNoMatch = fm.OnMatch
		},
		"and_matcher": func(_ *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			fm.Predicate = &xdsmatcherv3.Matcher_MatcherList_Predicate{MatchType: &xdsmatcherv3.Matcher_MatcherList_Predicate_AndMatcher{
				AndMatcher: &xdsmatcherv3.Matcher_MatcherList_Predicate_PredicateList{Predicate: []*xdsmatcherv3.Matcher_MatcherList_Predicate{fm.Predicate, fm.Predicate}},
			}}
		},
		"other input": func(_ *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			fm.Predicate.GetSinglePredicate().Input.TypedConfig = mustAny(t, &typematcherv3.HttpResponseHeaderMatchInput{HeaderName: "x"})
		},
		"suffix": func(_ *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			fm.Predicate.GetSinglePredicate().GetValueMatch().MatchPattern = &xdsmatcherv3.StringMatcher_Suffix{Suffix: "ai"}
		},
		"ignore_case": func(_ *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			fm.Predicate.GetSinglePredicate().GetValueMatch().IgnoreCase = true
		},
		"other action": func(_ *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			fm.OnMatch.GetAction().TypedConfig = mustAny(t, wrapperspb.String("x"))
		},
		"nested matcher": func(e *matchingv3.ExtensionWithMatcher, fm *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			fm.OnMatch = &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Matcher{Matcher: proto.Clone(e.XdsMatcher).(*xdsmatcherv3.Matcher)}}
		},
		"matcher tree": func(e *matchingv3.ExtensionWithMatcher, _ *xdsmatcherv3.Matcher_MatcherList_FieldMatcher) {
			e.XdsMatcher = &xdsmatcherv3.Matcher{MatcherType: &xdsmatcherv3.Matcher_MatcherTree_{MatcherTree: &xdsmatcherv3.Matcher_MatcherTree{}}}
		},
	}
	for name, mod := range refuse {
		if _, _, err := findExtProc([]*hcmv3.HttpFilter{wrapped(t, mod)}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHeadersApply(t *testing.T) {
	h := NewHeaders(":path", "/v1/chat/completions", "authorization", "Bearer c", "x-api-key", "k", "content-length", "10")
	err := h.Apply(&extprocv3.HeaderMutation{
		RemoveHeaders: []string{"x-api-key", "authorization"},
		SetHeaders: []*corev3.HeaderValueOption{
			{Header: &corev3.HeaderValue{Key: ":path", RawValue: []byte("/v1/messages")}},
			{Header: &corev3.HeaderValue{Key: "x-weir-backend", Value: "anthropic"}},
			{Header: &corev3.HeaderValue{Key: "content-length", RawValue: []byte("12")}},
			{Header: &corev3.HeaderValue{Key: "x-a", RawValue: []byte("1")}},
			{Header: &corev3.HeaderValue{Key: "x-a", RawValue: []byte("2")}, Append: wrapperspb.Bool(true)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []headerKV{{":path", "/v1/messages"}, {"content-length", "12"}, {"x-weir-backend", "anthropic"}, {"x-a", "1"}, {"x-a", "2"}}
	if !slices.Equal(h.kv, want) {
		t.Errorf("got %v, want %v", h.kv, want)
	}
	if v, _ := h.Get("x-a"); v != "1,2" {
		t.Errorf("x-a %q", v)
	}
}

// recorder wraps an ext_proc server and records every message it gets, by
// the stream's filter level, marshalled deterministically.
type recorder struct {
	extprocv3.ExternalProcessorServer
	mu   sync.Mutex
	msgs []recorded
	// tamper, if set, edits each reply before it is sent.
	tamper func(*extprocv3.ProcessingResponse)
}

type recorded struct {
	level string
	phase string
	raw   string
}

type recStream struct {
	extprocv3.ExternalProcessor_ProcessServer
	r     *recorder
	level string
}

func (s *recStream) Recv() (*extprocv3.ProcessingRequest, error) {
	m, err := s.ExternalProcessor_ProcessServer.Recv()
	if err == nil {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		phase := "other"
		switch m.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			phase = string(RequestHeaders)
		case *extprocv3.ProcessingRequest_RequestBody:
			phase = string(RequestBody)
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			phase = string(ResponseHeaders)
		case *extprocv3.ProcessingRequest_ResponseBody:
			phase = string(ResponseBody)
		}
		s.r.mu.Lock()
		s.r.msgs = append(s.r.msgs, recorded{s.level, phase, string(b)})
		s.r.mu.Unlock()
	}
	return m, err
}

func (s *recStream) Send(resp *extprocv3.ProcessingResponse) error {
	if s.r.tamper != nil {
		resp = proto.Clone(resp).(*extprocv3.ProcessingResponse)
		s.r.tamper(resp)
	}
	return s.ExternalProcessor_ProcessServer.Send(resp)
}

func (r *recorder) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	level := ""
	if md, ok := metadata.FromIncomingContext(s.Context()); ok && len(md.Get(config.FilterLevelHeader)) > 0 {
		level = md.Get(config.FilterLevelHeader)[0]
	}
	return r.ExternalProcessorServer.Process(&recStream{ExternalProcessor_ProcessServer: s, r: r, level: level})
}

func (r *recorder) phases() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		out = append(out, m.level+" "+m.phase)
	}
	return out
}

// Weir and the null floor get the same four messages on one router-level
// stream, byte for byte, and no upstream-level stream.
func TestNullSameMessages(t *testing.T) {
	for _, name := range []string{"openai", "anthropic", "bedrock", "gemini", "keys-memory"} {
		t.Run(name, func(t *testing.T) {
			wd, p := setup(t, name, true)
			nd, _ := setup(t, name, false)
			wr := &recorder{ExternalProcessorServer: weirServer(t, p)}
			nr := &recorder{ExternalProcessorServer: NullServer{}}
			if err := wd.Do(context.Background(), serve(t, wr), RequestID(7)); err != nil {
				t.Fatal(err)
			}
			if err := nd.Do(context.Background(), serve(t, nr), RequestID(7)); err != nil {
				t.Fatal(err)
			}
			want := []string{"router request_headers", "router request_body", "router response_headers", "router response_body"}
			if got := wr.phases(); !slices.Equal(got, want) {
				t.Errorf("weir got %v, want %v", got, want)
			}
			if got := nr.phases(); !slices.Equal(got, want) {
				t.Errorf("null got %v, want %v", got, want)
			}
			for i := range min(len(wr.msgs), len(nr.msgs)) {
				if wr.msgs[i].raw != nr.msgs[i].raw {
					t.Errorf("message %d (%s) differs between weir and null", i, want[i])
				}
			}
			// The first message is the real header map with protocol_config.
			var first extprocv3.ProcessingRequest
			if err := proto.Unmarshal([]byte(wr.msgs[0].raw), &first); err != nil {
				t.Fatal(err)
			}
			h := first.GetRequestHeaders()
			if first.GetProtocolConfig() == nil || h.GetEndOfStream() || first.GetAttributes() != nil || len(h.GetHeaders().GetHeaders()) != 11 {
				t.Errorf("first message: %v", &first)
			}
		})
	}
}

// When the matcher does not skip the upstream filter (here: it is edited
// to expect another backend), the driver plays it: request_headers with
// the host attribute, then request_body, both with the forwarded metadata,
// on a second stream.
func TestUpstreamPlayedWhenNotSkipped(t *testing.T) {
	for _, strict := range []bool{true, false} {
		d, p := setup(t, "openai", strict)
		d.Shape.UpstreamSkip = &SkipMatcher{Header: config.HeaderBackend, Exact: "some-other-backend"}
		var srv extprocv3.ExternalProcessorServer = NullServer{}
		if strict {
			srv = weirServer(t, p)
		}
		r := &recorder{ExternalProcessorServer: srv}
		if err := d.Do(context.Background(), serve(t, r), RequestID(3)); err != nil {
			t.Fatalf("strict %v: %v", strict, err)
		}
		want := []string{"router request_headers", "router request_body", "upstream request_headers", "upstream request_body", "router response_headers", "router response_body"}
		if got := r.phases(); !slices.Equal(got, want) {
			t.Errorf("strict %v: got %v, want %v", strict, got, want)
		}
		var uh extprocv3.ProcessingRequest
		if err := proto.Unmarshal([]byte(r.msgs[2].raw), &uh); err != nil {
			t.Fatal(err)
		}
		if uh.GetAttributes()[xds.FilterExtProc].GetFields()[config.AttrHostBackend].GetStringValue() != p.Backend ||
			uh.GetMetadataContext().GetFilterMetadata()[config.MetadataNamespace].GetFields()[config.MetaBackend].GetStringValue() != p.Backend ||
			uh.GetProtocolConfig() == nil {
			t.Errorf("strict %v: upstream request_headers %v", strict, &uh)
		}
		if !strict && len(d.Sizes()) != 6 {
			t.Errorf("sizes %v", d.Sizes())
		}
	}
}

// The strict driver fails on each way a router reply can be wrong.
func TestStrictCatchesBadReplies(t *testing.T) {
	onBody := func(f func(*extprocv3.CommonResponse)) func(*extprocv3.ProcessingResponse) {
		return func(r *extprocv3.ProcessingResponse) {
			if rb := r.GetRequestBody(); rb != nil {
				f(rb.GetResponse())
			}
		}
	}
	for _, c := range []struct {
		config, name, key string
		tamper            func(*extprocv3.ProcessingResponse)
	}{
		{"openai", "headers reply not empty", "router request_headers: reply not empty", func(r *extprocv3.ProcessingResponse) {
			if rh := r.GetRequestHeaders(); rh != nil {
				rh.Response = &extprocv3.CommonResponse{ClearRouteCache: true}
			}
		}},
		{"openai", "no clear_route_cache", "clear_route_cache", onBody(func(c *extprocv3.CommonResponse) { c.ClearRouteCache = false })},
		{"anthropic", "client authorization kept", "client credential header not removed", onBody(func(c *extprocv3.CommonResponse) {
			c.HeaderMutation.RemoveHeaders = slices.DeleteFunc(slices.Clone(c.HeaderMutation.RemoveHeaders), func(s string) bool { return s == "authorization" })
		})},
		{"gemini", "client key forwarded", "client credential forwarded", onBody(func(c *extprocv3.CommonResponse) {
			c.HeaderMutation.SetHeaders = append(c.HeaderMutation.SetHeaders, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "authorization", RawValue: []byte("Bearer " + ClientKey)}})
		})},
		{"bedrock", "not signed", "not SigV4-signed", onBody(func(c *extprocv3.CommonResponse) {
			c.HeaderMutation.SetHeaders = slices.DeleteFunc(c.HeaderMutation.SetHeaders, func(h *corev3.HeaderValueOption) bool { return h.GetHeader().GetKey() == "x-amz-date" })
		})},
		{"anthropic", "no content-length", "wrong content-length", onBody(func(c *extprocv3.CommonResponse) {
			c.HeaderMutation.SetHeaders = slices.DeleteFunc(c.HeaderMutation.SetHeaders, func(h *corev3.HeaderValueOption) bool { return h.GetHeader().GetKey() == "content-length" })
		})},
		{"openai", "other backend", config.HeaderBackend, onBody(func(c *extprocv3.CommonResponse) {
			for _, h := range c.HeaderMutation.SetHeaders {
				if h.GetHeader().GetKey() == config.HeaderBackend {
					h.Header = &corev3.HeaderValue{Key: config.HeaderBackend, RawValue: []byte("nope")}
				}
			}
		})},
		{"gemini", "body not translated", "body not translated", onBody(func(c *extprocv3.CommonResponse) { c.BodyMutation = nil })},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, p := setup(t, c.config, true)
			r := &recorder{ExternalProcessorServer: weirServer(t, p), tamper: c.tamper}
			err := d.Do(context.Background(), serve(t, r), RequestID(1))
			var be *Error
			if !errors.As(err, &be) || !strings.Contains(be.Key, c.key) {
				t.Fatalf("got %v, want an error about %q", err, c.key)
			}
		})
	}
}
