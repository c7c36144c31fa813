package harness

import (
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
)

// TestVirtualHostSelection runs the route table xds renders for
// listener.hostnames through the harness's findVirtualHost (Envoy's
// RouteMatcher::findVirtualHost): listed hosts reach the backend routes
// whatever their case and port; every other host gets the 404 virtual
// host, never the backend routes.
func TestVirtualHostSelection(t *testing.T) {
	tests := []struct {
		name      string
		hostnames []string
		host      string
		want      string // virtual host name
	}{
		{"no hostnames: any host", nil, "whatever.example", xds.VirtualHostName},
		{"no hostnames: no host", nil, "", xds.VirtualHostName},
		{"exact", []string{"api.example.com"}, "api.example.com", xds.VirtualHostName},
		{"exact, upper case", []string{"api.example.com"}, "API.Example.COM", xds.VirtualHostName},
		{"exact with port", []string{"api.example.com"}, "api.example.com:8080", xds.VirtualHostName},
		{"other host", []string{"api.example.com"}, "evil.example.com", xds.UnknownHostName},
		{"suffix of a listed host is not it", []string{"api.example.com"}, "xapi.example.com", xds.UnknownHostName},
		{"wildcard matches a subdomain", []string{"*.ai.example.com"}, "team-a.ai.example.com", xds.VirtualHostName},
		{"wildcard matches deeper", []string{"*.ai.example.com"}, "x.y.ai.example.com", xds.VirtualHostName},
		{"wildcard does not match its parent", []string{"*.ai.example.com"}, "ai.example.com", xds.UnknownHostName},
		{"wildcard with port", []string{"*.ai.example.com"}, "a.ai.example.com:443", xds.VirtualHostName},
		{"empty host", []string{"api.example.com"}, "", xds.UnknownHostName},
		{"ipv6 literal", []string{"api.example.com"}, "[::1]:8080", xds.UnknownHostName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("version: weir.dev/v1alpha1\nbackends:\n  - {name: b1, provider: openai, base_url: \"http://127.0.0.1:1/v1\"}\nmodels:\n  - {name: m1, backends: [b1]}\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Listener.Hostnames = tt.hostnames
			res, err := xds.Build(cfg, xds.Options{ExtProcAddress: "127.0.0.1:1"})
			if err != nil {
				t.Fatal(err)
			}
			rc := mustHCM(res.Listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig()).GetRouteConfig()
			if err := checkRoutes(rc); err != nil {
				t.Fatal(err)
			}
			vh := findVirtualHost(rc, tt.host)
			if vh.GetName() != tt.want {
				t.Fatalf("host %q chose virtual host %q, want %q", tt.host, vh.GetName(), tt.want)
			}
			h := &headers{}
			h.set(":authority", tt.host)
			h.set(":path", "/v1/chat/completions")
			h.set(config.HeaderBackend, "b1")
			r := matchRoute(rc, h)
			if backend := r.GetRoute().GetCluster() != ""; backend != (tt.want == xds.VirtualHostName) {
				t.Fatalf("route %q: reaches a backend %v, want %v", r.GetName(), backend, tt.want == xds.VirtualHostName)
			}
		})
	}
}

// TestStripPort follows HeaderUtility::getPortStart case by case.
func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"a.example":      "a.example",
		"a.example:80":   "a.example",
		"[::1]:8080":     "[::1]",
		"[::1]":          "[::1]",
		"::1":            ":", // Envoy, too, reads the last group as a port
		"a.example:":     "a.example",
		"":               "",
		"127.0.0.1:9000": "127.0.0.1",
	} {
		if got := stripPort(in); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", in, got, want)
		}
	}
}
