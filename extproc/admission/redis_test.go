package admission_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/admission"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/limits"
	"github.com/weir-ai/weir/test/redistest"
	"github.com/weir-ai/weir/test/testpki"
)

// TestRedisTLSAndACL opens the limits store against real redis-servers
// that require an ACL user, a password, TLS, or TLS with client
// certificates, and reserves through it: the one client the store builds
// is the one the key store and spend stream share.
func TestRedisTLSAndACL(t *testing.T) {
	ca := testpki.NewCA(t, "redis-ca")
	other := testpki.NewCA(t, "other-ca")
	dir := t.TempDir()
	srv := ca.Issue(t, "redis", "redis.internal", "127.0.0.1")
	client := ca.Issue(t, "weir")
	caFile := testpki.WriteFile(t, dir, "ca.pem", ca.PEM)
	otherCA := testpki.WriteFile(t, dir, "other.pem", other.PEM)
	srvCert := testpki.WriteFile(t, dir, "srv.pem", srv.CertPEM)
	srvKey := testpki.WriteFile(t, dir, "srv.key", srv.KeyPEM)
	cliCert := testpki.WriteFile(t, dir, "cli.pem", client.CertPEM)
	cliKey := testpki.WriteFile(t, dir, "cli.key", client.KeyPEM)
	tlsArgs := func(authClients string) []string {
		return []string{"--tls-cert-file", srvCert, "--tls-key-file", srvKey, "--tls-ca-cert-file", caFile, "--tls-auth-clients", authClients}
	}
	// The servers' own readiness check dials with this.
	cert := client.TLS
	testTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "redis.internal", Certificates: []tls.Certificate{cert}}
	// redis-server reads ACL users with their rules from a file; on the
	// command line the rules would be taken for part of the name.
	acl := []string{"--aclfile", testpki.WriteFile(t, dir, "users.acl", []byte("user default off\nuser weir on >s3cret-acl ~* &* +@all\n"))}

	tests := []struct {
		name    string
		server  redistest.Options
		redis   config.Redis // Addr is filled in
		wantErr string       // "" means the reserve succeeds
	}{
		{"acl user", redistest.Options{Args: acl, Username: "weir", Password: "s3cret-acl"},
			config.Redis{Username: "weir", Password: "s3cret-acl"}, ""},
		{"acl wrong password", redistest.Options{Args: acl, Username: "weir", Password: "s3cret-acl"},
			config.Redis{Username: "weir", Password: "wrong"}, "WRONGPASS"},
		{"acl default user disabled", redistest.Options{Args: acl, Username: "weir", Password: "s3cret-acl"},
			config.Redis{Password: "s3cret-acl"}, "WRONGPASS"},
		{"requirepass", redistest.Options{Args: []string{"--requirepass", "pw-only"}, Password: "pw-only"},
			config.Redis{Password: "pw-only"}, ""},
		{"tls", redistest.Options{Args: tlsArgs("no"), TLS: testTLS},
			config.Redis{TLS: &config.RedisTLS{Enabled: true, CAFile: caFile, ServerName: "redis.internal"}}, ""},
		{"tls server name from addr", redistest.Options{Args: tlsArgs("no"), TLS: testTLS},
			config.Redis{TLS: &config.RedisTLS{Enabled: true, CAFile: caFile}}, ""},
		{"tls wrong ca", redistest.Options{Args: tlsArgs("no"), TLS: testTLS},
			config.Redis{TLS: &config.RedisTLS{Enabled: true, CAFile: otherCA}}, "certificate signed by unknown authority"},
		{"tls wrong server name", redistest.Options{Args: tlsArgs("no"), TLS: testTLS},
			config.Redis{TLS: &config.RedisTLS{Enabled: true, CAFile: caFile, ServerName: "evil.example"}}, "evil.example"},
		{"plain client, tls server", redistest.Options{Args: tlsArgs("no"), TLS: testTLS},
			config.Redis{}, "store unreachable"},
		{"mutual tls and acl", redistest.Options{Args: append(tlsArgs("yes"), acl...), TLS: testTLS, Username: "weir", Password: "s3cret-acl"},
			config.Redis{Username: "weir", Password: "s3cret-acl", TLS: &config.RedisTLS{Enabled: true, CAFile: caFile, CertFile: cliCert, KeyFile: cliKey}}, ""},
		{"mutual tls without a client certificate", redistest.Options{Args: tlsArgs("yes"), TLS: testTLS},
			config.Redis{TLS: &config.RedisTLS{Enabled: true, CAFile: caFile}}, "store unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := redistest.StartWith(t, tc.server)
			r := tc.redis
			r.Addr = s.Addr
			st, err := admission.OpenStore(&config.Limits{Store: "redis", Redis: &r}, admission.StoreOptions{Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer st.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// The client's own error, as the key store and the spend
			// stream see it.
			pingErr := st.Redis.Ping(ctx).Err()
			cs := (&limits.Planner{}).Plan(nil, []limits.Subject{{Scope: "key", ID: "k", Limits: limits.Limits{RPM: 10}}}, "", limits.Estimate{})
			res, err := st.Reserve(ctx, "r1", cs, time.Minute)
			if tc.wantErr == "" {
				if pingErr != nil || err != nil || !res.OK || res.Degraded {
					t.Fatalf("ping %v; reserve %+v %v", pingErr, res, err)
				}
				return
			}
			if errs.Status(err) != 503 {
				t.Errorf("reserve: %v (status %d), want 503", err, errs.Status(err))
			}
			if got := errString(pingErr) + " | " + errString(err); !strings.Contains(got, tc.wantErr) {
				t.Errorf("errors %q, want one to mention %q", got, tc.wantErr)
			}
			if strings.Contains(errString(pingErr)+errString(err), string(r.Password)) && r.Password != "" {
				t.Errorf("an error carries the password: %v / %v", pingErr, err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestRedisOptionsFiles: a TLS file that cannot be read fails the open,
// naming the field, instead of connecting without it.
func TestRedisOptionsFiles(t *testing.T) {
	dir := t.TempDir()
	junk := testpki.WriteFile(t, dir, "junk.pem", []byte("not a certificate"))
	for _, tc := range []struct {
		name string
		tls  config.RedisTLS
		want string
	}{
		{"missing ca", config.RedisTLS{Enabled: true, CAFile: dir + "/nope.pem"}, "limits.redis.tls.ca_file"},
		{"junk ca", config.RedisTLS{Enabled: true, CAFile: junk}, "limits.redis.tls.ca_file: no PEM certificate"},
		{"junk client cert", config.RedisTLS{Enabled: true, CertFile: junk, KeyFile: junk}, "limits.redis.tls.cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admission.OpenStore(&config.Limits{Store: "redis", Redis: &config.Redis{Addr: "127.0.0.1:1", TLS: &tc.tls}}, admission.StoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("open: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestStoreMatches: a reload that changes how Redis is reached (address,
// user, password, database, TLS, breaker, fail mode) asks for a restart,
// rather than being silently ignored; one that changes nothing does not.
func TestStoreMatches(t *testing.T) {
	ca := testpki.WriteFile(t, "", "ca.pem", testpki.NewCA(t, "ca").PEM)
	base := func() *config.Limits {
		return &config.Limits{Store: "redis", FailMode: "open", Redis: &config.Redis{Addr: "r:6379", Username: "weir", Password: "pw",
			TLS: &config.RedisTLS{Enabled: true, CAFile: ca}}}
	}
	st, err := admission.OpenStore(base(), admission.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, tc := range []struct {
		name   string
		change func(*config.Limits)
		want   bool
	}{
		{"same", func(*config.Limits) {}, true},
		{"other limits settings", func(l *config.Limits) { l.TimeZone = "Europe/Berlin" }, true},
		{"addr", func(l *config.Limits) { l.Redis.Addr = "r2:6379" }, false},
		{"password", func(l *config.Limits) { l.Redis.Password = "rotated" }, false},
		{"user", func(l *config.Limits) { l.Redis.Username = "other" }, false},
		{"db", func(l *config.Limits) { l.Redis.DB = 2 }, false},
		{"tls ca", func(l *config.Limits) { l.Redis.TLS.CAFile = "/other.pem" }, false},
		{"tls off", func(l *config.Limits) { l.Redis.TLS = nil }, false},
		{"fail mode", func(l *config.Limits) { l.FailMode = "closed" }, false},
		{"breaker", func(l *config.Limits) { l.Breaker = &config.Breaker{Failures: 2} }, false},
		{"memory", func(l *config.Limits) { l.Store = "memory" }, false},
	} {
		l := base()
		tc.change(l)
		if got := st.Matches(l); got != tc.want {
			t.Errorf("%s: Matches %v, want %v", tc.name, got, tc.want)
		}
	}
}
