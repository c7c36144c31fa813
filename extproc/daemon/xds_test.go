package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/weir-ai/weir/controller/xds"
	"github.com/weir-ai/weir/controller/xdsserver"
	"github.com/weir-ai/weir/test/xdstest"
)

// TestRunFromXDS: with XDSServer the daemon takes its config from the
// controller: not ready until the first config arrives, ready after, and
// a config over the body limit is refused (NACKed), not applied.
func TestRunFromXDS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // bounds a hang only
	defer cancel()
	xs, err := xdsserver.New(xdsserver.Options{Envoy: xds.Options{ExtProcAddress: "127.0.0.1:1063"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	xs.Register(g)
	go g.Serve(lis)
	t.Cleanup(g.Stop)

	adminc := make(chan string, 1)
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		done <- Run(runCtx, Options{
			XDSServer: lis.Addr().String(), XDSInsecure: true, XDSNodeID: "replica-1",
			Listen: "127.0.0.1:0", InsecureTCP: true, AdminListen: "127.0.0.1:0",
			Logger: slog.New(slog.DiscardHandler),
			Ready:  func(_, admin, _ net.Addr) { adminc <- admin.String() },
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var admin string
	select {
	case admin = <-adminc:
	case err := <-done:
		t.Fatalf("Run returned before serving: %v", err)
	}
	readyz := func() int {
		t.Helper()
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	answered := func(v string, acked bool) xdsserver.Client {
		t.Helper()
		for {
			for _, c := range xs.Clients() {
				if c.Node == "replica-1" && ((acked && c.AckedVersion == v) || (!acked && c.Nacked != nil && c.Nacked.Version == v)) {
					return c
				}
			}
			select {
			case <-xs.Changed():
			case <-ctx.Done():
				t.Fatalf("replica never answered %s: %+v", v, xs.Clients())
			}
		}
	}

	if got := readyz(); got != http.StatusServiceUnavailable {
		t.Errorf("readyz before any config = %d, want 503", got)
	}
	v1, err := xs.Push(ctx, xdstest.LargeConfig(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	answered(v1, true)
	if got := readyz(); got != http.StatusOK {
		t.Errorf("readyz after the first config = %d, want 200", got)
	}

	big := xdstest.LargeConfig(1, 1)
	big.Listener.MaxBodyBytes = MaxMessageBytes
	v2, err := xs.Push(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if c := answered(v2, false); !strings.Contains(c.Nacked.Message, "max_body_bytes") {
		t.Errorf("nack %q", c.Nacked.Message)
	}
	if got := readyz(); got != http.StatusOK {
		t.Errorf("readyz after a refused config = %d, want 200 (the last good one serves)", got)
	}
}

func TestXDSOptionsRefused(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"xds and a file", Options{XDSServer: "127.0.0.1:1", XDSInsecure: true, ConfigPath: "/x.yaml"}, "not both"},
		{"client cert without key", Options{XDSServer: "127.0.0.1:1", XDSCertFile: "/c.pem"}, "both"},
		{"key admin API", Options{XDSServer: "127.0.0.1:1", XDSInsecure: true, KeyAdminListen: "127.0.0.1:0"}, "key admin API"},
		{"insecure with TLS files", Options{XDSServer: "127.0.0.1:1", XDSInsecure: true, XDSCAFile: "/ca.pem"}, "insecure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Logger = slog.New(slog.DiscardHandler)
			err := Run(t.Context(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
