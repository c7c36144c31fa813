package xds

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weir-ai/weir/config"
)

// routeConfig builds the one virtual host. Order matters: Envoy takes the
// first match, so /v1/models comes before the backend routes (a models GET
// never carries x-weir-backend anyway), and the catch-all is last.
func routeConfig(cfg *config.Config) (*routev3.RouteConfiguration, error) {
	models, err := modelsRoute()
	if err != nil {
		return nil, err
	}
	routes := make([]*routev3.Route, 0, len(cfg.Backends)+2)
	routes = append(routes, models)
	for i := range cfg.Backends {
		routes = append(routes, backendRoute(&cfg.Backends[i]))
	}
	routes = append(routes, &routev3.Route{
		Name:                 "no-backend",
		Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action:               directResponse(404, bodyNoRoute),
		ResponseHeadersToAdd: jsonContentType(),
	})
	return &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    VirtualHostName,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}, nil
}

// modelsRoute sends only request headers to the router-level filter, which
// answers GET /v1/models with an immediate response. The direct response
// is the fallback if it ever lets the request through.
func modelsRoute() (*routev3.Route, error) {
	perRoute := &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{
		Overrides: &extprocv3.ExtProcOverrides{ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:  extprocv3.ProcessingMode_SEND,
			RequestBodyMode:    extprocv3.ProcessingMode_NONE,
			ResponseHeaderMode: extprocv3.ProcessingMode_SKIP,
			ResponseBodyMode:   extprocv3.ProcessingMode_NONE,
		}},
	}}
	a, err := anypb.New(perRoute)
	if err != nil {
		return nil, fmt.Errorf("xds: pack ext_proc per-route config: %w", err)
	}
	return &routev3.Route{
		Name:                 "models",
		Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: ModelsPathPrefix}},
		Action:               directResponse(503, bodyModelsUnavailable),
		ResponseHeadersToAdd: jsonContentType(),
		TypedPerFilterConfig: map[string]*anypb.Any{FilterExtProc: a},
	}, nil
}

// backendRoute matches the header the router-level filter sets after it
// has read the body and picked a backend.
func backendRoute(b *config.Backend) *routev3.Route {
	t := b.EffectiveTimeout()
	return &routev3.Route{
		Name: "backend-" + b.Name,
		Match: &routev3.RouteMatch{
			PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"},
			Headers: []*routev3.HeaderMatcher{{
				Name: config.HeaderBackend,
				HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: b.Name},
				}},
			}},
		},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: config.ClusterName(b.Name)},
			Timeout:          durationpb.New(t),
			// A reasoning model can be silent for most of the attempt.
			IdleTimeout: durationpb.New(t),
		}},
	}
}

func directResponse(status uint32, body string) *routev3.Route_DirectResponse {
	return &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
		Status: status,
		Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
	}}
}

// jsonContentType labels direct responses as JSON; Envoy would otherwise
// send text/plain.
func jsonContentType() []*corev3.HeaderValueOption {
	return []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
}
