package xds

import (
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weir-ai/weir/config"
)

// routeConfig builds the one virtual host: a route per backend, matched by
// the x-weir-backend header that only the router-level ext_proc sets (the
// HCM strips any a client sends before routing), then a catch-all. Envoy
// takes the first match; the extproc answers every request before the
// router sees it, so the catch-all is only a backstop.
func routeConfig(cfg *config.Config) (*routev3.RouteConfiguration, error) {
	routes := make([]*routev3.Route, 0, len(cfg.Backends)+1)
	for i := range cfg.Backends {
		routes = append(routes, backendRoute(&cfg.Backends[i]))
	}
	routes = append(routes, &routev3.Route{
		Name:                 "no-backend",
		Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action:               directResponse(404, bodyNoRoute),
		ResponseHeadersToAdd: jsonContentType(),
	})
	rc := &routev3.RouteConfiguration{
		Name: RouteConfigName,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    VirtualHostName,
			Domains: []string{"*"},
			Routes:  routes,
		}},
	}
	if h := cfg.Listener.Hostnames; len(h) > 0 {
		// Only the listed hosts reach the extproc; any other host falls to
		// the "*" virtual host's 404. Envoy picks a virtual host by exact
		// domain, then the longest "*." suffix, then "*"
		// (RouteMatcher::findVirtualHost), so the order here does not
		// matter. A client's Host header may carry a port; matching
		// ignores it so that "api.example.com:8080" is served as
		// "api.example.com".
		rc.VirtualHosts[0].Domains = slices.Clone(h)
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name:    UnknownHostName,
			Domains: []string{"*"},
			Routes: []*routev3.Route{{
				Name:                 "unknown-host",
				Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action:               directResponse(404, bodyUnknownHost),
				ResponseHeadersToAdd: jsonContentType(),
			}},
		})
		rc.IgnorePortInHostMatching = true
	}
	return rc, nil
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
