package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xdsserver"
	"github.com/weir-ai/weir/test/harness"
	"github.com/weir-ai/weir/test/xdstest"
)

// cfg is a valid config with one model per backend (Envoy gets a
// cluster and a route per backend; models live in the extproc config).
// caFile, when set, makes the first backend https with that CA bundle,
// which the harness loads at New: a missing file is a config it cannot
// serve.
func cfg(caFile string, backends ...string) *config.Config {
	c := &config.Config{Version: config.Version}
	for i, name := range backends {
		b := config.Backend{Name: name, Provider: "openai", BaseURL: "http://" + name + ".ns.svc.cluster.local/v1", Credential: &config.Credential{Value: "sk-x", Key: "sk-x"}}
		if caFile != "" && i == 0 {
			b.BaseURL = "https://models.example.com/v1"
			b.TLS = &config.BackendTLS{CAFile: caFile}
		}
		c.Backends = append(c.Backends, b)
		c.Models = append(c.Models, config.Model{Name: "model-" + name, Backends: []string{name}})
	}
	return c
}

// TestPlane: the Envoy stand-in follows the controller's pushes, ACKs
// each version once its harness serves it, and NACKs one it cannot
// serve while a harness keeps serving.
func TestPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // a bound, not a timing
	defer cancel()
	srv, err := xdsserver.New(xdsserver.Options{Envoy: xds.Options{ExtProcAddress: ExtProcAddress}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	conn := xdstest.Serve(t, srv.Register)
	cl, err := xdstest.Dial(ctx, conn, &corev3.Node{Id: "envoy-test", Cluster: "weir-envoy"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := newPlane(cl, func(res *xds.Resources) (*harness.Harness, error) {
		return harness.New(res, harness.Options{})
	}, slog.New(slog.DiscardHandler))
	defer p.close()
	go p.run(ctx)

	var prev *harness.Harness
	for i, tt := range []struct {
		name string
		cfg  *config.Config
		nack string // part of the NACK message; empty: ACKed
	}{
		{"first config", cfg("", "a"), ""},
		{"a backend added: a new cluster and route", cfg("", "a", "b"), ""},
		{"a CA file the data plane cannot load", cfg("/nonexistent/ca.pem", "a"), "/nonexistent/ca.pem"},
		{"a good config again", cfg("", "c"), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := srv.Push(ctx, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := answered(ctx, srv, v)
			if err != nil {
				t.Fatal(err)
			}
			cur := p.harness()
			if tt.nack != "" {
				if c.Nacked == nil || c.Nacked.Version != v || !strings.Contains(c.Nacked.Message, tt.nack) {
					t.Fatalf("push %d: client %+v, want a NACK of %s naming %q", i, c, v, tt.nack)
				}
				// Like Envoy, each type is applied on its own: the routes
				// of this version may be taken with the clusters kept,
				// so the harness may be rebuilt, but it keeps serving.
				if cur == nil {
					t.Fatal("no harness serving after a refused version")
				}
				prev = cur
				return
			}
			if c.AckedVersion != v {
				t.Fatalf("push %d: client %+v, want %s ACKed", i, c, v)
			}
			if cur == nil || cur == prev {
				t.Fatalf("push %d: ACKed but the harness was not rebuilt", i)
			}
			prev = cur
		})
	}
}

// answered waits, on the server's Changed signal, until the one client
// ACKed or NACKed version v.
func answered(ctx context.Context, srv *xdsserver.Server, v string) (xdsserver.Client, error) {
	for {
		for _, c := range srv.Clients() {
			if c.AckedVersion == v || c.Nacked != nil && c.Nacked.Version == v {
				return c, nil
			}
		}
		select {
		case <-srv.Changed():
		case <-ctx.Done():
			return xdsserver.Client{}, fmt.Errorf("version %s never answered: %+v", v, srv.Clients())
		}
	}
}
