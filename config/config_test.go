package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestExpand(t *testing.T) {
	lookup := env(map[string]string{"A": "x", "EMPTY": ""})
	tests := []struct {
		in, want, wantErr string
	}{
		{"plain", "plain", ""},
		{"${A}", "x", ""},
		{"a-${A}-b", "a-x-b", ""},
		{"${EMPTY:-d}", "", ""},
		{"${MISSING:-def}", "def", ""},
		{"$$A $5", "$A $5", ""},
		{"${MISSING}", "", "MISSING"},
		{"${MISSING} ${ALSO}", "", "MISSING, ALSO"},
		{"${A", "", "unterminated"},
		{"${1BAD}", "", "bad variable reference"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Expand([]byte(tt.in), lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

const base = `version: weir.dev/v1alpha1
backends:
  - name: oai
    provider: openai
    base_url: https://api.openai.com/v1
models:
  - name: gpt
    backends: [oai]
`

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // substrings, each must appear
	}{
		{"valid", base, nil},
		{"wrong version", strings.Replace(base, "weir.dev/v1alpha1", "v2", 1), []string{`version: must be "weir.dev/v1alpha1"`}},
		{"unknown field", base + "bogus: 1\n", []string{"field bogus not found"}},
		{"bad backend name", strings.Replace(base, "name: oai", "name: Bad_Name", 1), []string{"backends[0].name", "models[0].backends[0]: unknown backend \"oai\""}},
		{"bad url", strings.Replace(base, "https://api.openai.com/v1", "ftp://x", 1), []string{"backends[0].base_url", "scheme must be http or https"}},
		{"url with query", strings.Replace(base, "https://api.openai.com/v1", "https://x/v1?a=b", 1), []string{"backends[0].base_url"}},
		{"no provider", strings.Replace(base, "    provider: openai\n", "", 1), []string{"backends[0].provider: required"}},
		{"duplicate model", base + "  - name: gpt\n    backends: [oai]\n", []string{`models[1].name: "gpt" is already defined at models[0].name`}},
		{"alias clash", base + "  - name: other\n    aliases: [gpt]\n    backends: [oai]\n", []string{"models[1].aliases[0]"}},
		{"star in middle", base + "  - name: a*b\n    backends: [oai]\n", []string{"'*' is allowed only at the end"}},
		{"no backends", base + "  - name: lonely\n", []string{"models[1].backends: at least one backend is required"}},
		{"two credential sources", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    credential: {env: A, file: /x}\n", 1), []string{"set exactly one of env, file or value"}},
		{"bad header", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    headers: {X-Upper: v}\n", 1), []string{"backends[0].headers"}},
		{"header lists", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    forward_headers: [x-tenant-id, openai-beta]\n    expose_headers: [openai-processing-ms, x-ratelimit-limit-tokens]\n", 1), nil},
		{"bad forward header", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    forward_headers: [X-Tenant, \":path\", authorization, proxy-authorization, cookie, x-goog-api-key, accept-encoding, x-amz-security-token, transfer-encoding, content-length, x-weir-backend, x-envoy-retry-on, x-ok, x-ok]\n", 1),
			[]string{"forward_headers[0]", "forward_headers[1]", `forward_headers[2]: "authorization" carries credentials`, "forward_headers[3]", "forward_headers[4]", "forward_headers[5]",
				"forward_headers[6]", "forward_headers[7]: \"x-amz-security-token\" belongs to Weir's SigV4", "forward_headers[8]", "forward_headers[9]", "forward_headers[10]", "forward_headers[11]", `forward_headers[13]: "x-ok" is listed twice`}},
		{"bad expose header", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    expose_headers: [set-cookie, connection, x-weir-cost, Retry-After]\n", 1),
			[]string{"expose_headers[0]", "expose_headers[1]", "expose_headers[2]", "expose_headers[3]"}},
		{"negative body", base + "listener: {max_body_bytes: -1}\n", []string{"listener.max_body_bytes"}},
		{"negative spend queue", base + "spend: {queue_max: -1}\n", []string{"spend.queue_max"}},
		{"bad duration", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    timeout: soon\n", 1), []string{"invalid duration"}},
		{"bad log level", base + "logging: {level: loud}\n", []string{"logging.level"}},
		{"tls options", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    tls: {ca_file: /etc/weir/ca.pem, server_name: api.openai.com, subject_alt_names: [\"*.openai.com\", api.openai.com]}\n", 1), nil},
		{"tls on http", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: http://api.openai.com/v1\n    tls: {server_name: x.example}\n", 1), []string{"backends[0].tls: only valid with an https base_url"}},
		{"tls relative ca", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    tls: {ca_file: ca.pem}\n", 1), []string{"backends[0].tls.ca_file", "absolute path"}},
		{"tls bad names", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    tls: {server_name: \"a b\", subject_alt_names: [\"x..y\"]}\n", 1), []string{"backends[0].tls.server_name", "backends[0].tls.subject_alt_names[0]"}},
		{"team rules", base + "auth:\n  teams: [{id: t1, blocked: true, models: [gpt, \"openai/*\"]}]\n  users: [{id: u1, models: [gpt]}]\n", nil},
		{"blocked user", base + "auth: {users: [{id: u1, blocked: true}]}\n", []string{"auth.users[0].blocked: only teams can be blocked"}},
		{"blocked org", base + "auth: {organizations: [{id: o1, blocked: true}]}\n", []string{"auth.organizations[0].blocked"}},
		{"org models", base + "auth: {organizations: [{id: o1, models: [gpt]}]}\n", []string{"auth.organizations[0].models"}},
		{"empty team model", base + "auth: {teams: [{id: t1, models: [\"\"]}]}\n", []string{"auth.teams[0].models[0]: empty model name"}},
		{"session", base + "limits: {session: {header: x-session-id, ttl: 12h, max_budget: 1, rpm_limit: 30}}\n", nil},
		{"session default ttl", base + "limits: {session: {header: x-session-id, tpm_limit: 1000}}\n", nil},
		{"session bad header", base + "limits: {session: {header: X-Session, max_budget: 1}}\n", []string{"limits.session.header"}},
		{"session credential header", base + "limits: {session: {header: authorization, max_budget: 1}}\n", []string{"limits.session.header", "credentials"}},
		{"session short ttl", base + "limits: {session: {header: x-session-id, ttl: 5s, max_budget: 1}}\n", []string{"limits.session.ttl"}},
		{"session bad ttl", base + "limits: {session: {header: x-session-id, ttl: 1d, max_budget: 1}}\n", []string{"limits.session.ttl"}},
		{"session no limit", base + "limits: {session: {header: x-session-id}}\n", []string{"limits.session: sets no limit"}},
		{"session negative", base + "limits: {session: {header: x-session-id, rpm_limit: -1}}\n", []string{"limits.session: limits must not be negative"}},
		{"reserve cap", base + "limits: {max_reserve_tokens: 4096}\n", nil},
		{"negative reserve cap", base + "limits: {max_reserve_tokens: -1, completion_estimate: -1}\n", []string{"limits.max_reserve_tokens: must not be negative", "limits.completion_estimate"}},
		{"stored responses", strings.Replace(base, "    backends: [oai]\n", "    backends: [oai]\n    stored_responses: true\n", 1) + "responses: {id_secret: 0123456789abcdef0123456789abcdef}\n", nil},
		{"stored responses without a secret", strings.Replace(base, "    backends: [oai]\n", "    backends: [oai]\n    stored_responses: true\n", 1), []string{"models[0].stored_responses: needs responses.id_secret"}},
		{"short id secret", base + "responses: {id_secret: short}\n", []string{"responses.id_secret: must be at least 32 bytes, got 5"}},
		{"redis tls and acl", base + "limits: {store: redis, redis: {addr: \"r:6380\", username: weir, password: pw, tls: {enabled: true, ca_file: /etc/weir/redis-ca.pem, server_name: redis.internal, cert_file: /c.pem, key_file: /k.pem}}, breaker: {failures: 3, probe_interval: 5s}}\n", nil},
		{"redis tls settings without enabled", base + "limits: {store: redis, redis: {addr: \"r:6380\", tls: {ca_file: /ca.pem}}}\n", []string{"limits.redis.tls.enabled", "enabled is false"}},
		{"redis tls cert without key", base + "limits: {store: redis, redis: {addr: \"r:6380\", tls: {enabled: true, cert_file: /c.pem}}}\n", []string{"limits.redis.tls: cert_file and key_file go together"}},
		{"redis tls unknown field", base + "limits: {store: redis, redis: {addr: \"r:6380\", tls: {enabled: true, insecure: true}}}\n", []string{"field insecure not found"}},
		{"negative breaker", base + "limits: {breaker: {failures: -1}}\n", []string{"limits.breaker"}},
		{"bad breaker interval", base + "limits: {breaker: {probe_interval: soon}}\n", []string{"invalid duration"}},
		{"limits id", base + "auth: {keys: [{hash: " + strings.Repeat("a", 64) + ", limits_id: 3f1c-uid_1.v}]}\n", nil},
		{"bad limits id", base + "auth: {keys: [{hash: " + strings.Repeat("a", 64) + ", limits_id: \"a:b\"}]}\n", []string{"auth.keys[0].limits_id"}},
		{"hostnames", base + "listener: {hostnames: [api.example.com, \"*.ai.example.com\"]}\n", nil},
		{"bad hostnames", base + "listener: {hostnames: [\"Bad Host\", \"a.*.b\", api.example.com, api.example.com]}\n", []string{"listener.hostnames[0]", "listener.hostnames[1]", "listener.hostnames[3]: duplicate"}},
		{"tls unknown field", strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    tls: {insecure: true}\n", 1), []string{"field insecure not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(nil))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("sk-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cred, want, wantErr string
	}{
		{"env", "{env: OPENAI_KEY}", "sk-from-env", ""},
		{"file trimmed", "{file: " + keyFile + "}", "sk-from-file", ""},
		{"inline", "{value: sk-inline}", "sk-inline", ""},
		{"env missing", "{env: NOPE}", "", "environment variable NOPE is not set"},
		{"file missing", "{file: " + filepath.Join(dir, "nope") + "}", "", "backends[0].credential.file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(base, "    base_url: https://api.openai.com/v1\n", "    base_url: https://api.openai.com/v1\n    credential: "+tt.cred+"\n", 1)
			c, err := Parse([]byte(y), env(map[string]string{"OPENAI_KEY": "sk-from-env"}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Backends[0].Credential.Key.Reveal(); got != tt.want {
				t.Errorf("key = %q, want %q", got, tt.want)
			}
		})
	}
}

// A config full of secrets, logged every way a developer might, must not
// show one of them.
func TestSecretsRedacted(t *testing.T) {
	y := strings.Replace(base, "    base_url: https://api.openai.com/v1\n",
		"    base_url: https://api.openai.com/v1\n    credential: {value: sk-SECRET-1}\n    headers: {x-org: sk-SECRET-2}\n", 1)
	c, err := Parse([]byte(y), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil))
	c.Responses.IDSecret = "SECRET-3"
	l.Info("cfg", "config", c, "backend", c.Backends[0], "cred", c.Backends[0].Credential, "key", c.Backends[0].Credential.Key)
	l.Info("text", "s", fmt.Sprintf("%v %+v %#v %s", c, c.Backends[0], c.Backends[0].Credential, c.Backends[0].Headers))
	if strings.Contains(buf.String(), "SECRET") {
		t.Fatalf("secret leaked: %s", buf.String())
	}
	if !strings.Contains(buf.String(), Redacted) {
		t.Fatalf("expected redaction marker in %s", buf.String())
	}
}

func TestDefaultConfigLoads(t *testing.T) {
	c, err := Parse(DefaultYAML(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend("fake-openai") == nil || c.Backend("fake-anthropic") == nil {
		t.Fatal("default config lacks the fake backends")
	}
	if got := c.Backend("fake-openai").BaseURL; got != "http://127.0.0.1:18001/v1" {
		t.Errorf("fake-openai base_url default = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add(DefaultYAML())
	f.Add([]byte("version: ${X:-weir.dev/v1alpha1}\nmodels: [{name: '*', backends: []}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, env(map[string]string{"X": "y"}))
		if err == nil {
			// A config that parsed must validate again unchanged.
			if err := c.Validate(); err != nil {
				t.Fatalf("parsed config fails validation: %v", err)
			}
		}
	})
}

func TestPresets(t *testing.T) {
	env := map[string]string{"GROQ_API_KEY": "gsk-test"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name, backend string
		wantURL       string
		wantKey       string
		wantErr       string
	}{
		{"saas preset needs only a key", `{name: g, preset: groq}`, "https://api.groq.com/openai/v1", "gsk-test", ""},
		{"local preset needs no key", `{name: o, preset: ollama}`, "http://127.0.0.1:11434/v1", "", ""},
		{"base_url overrides the preset", `{name: o, preset: ollama, base_url: "http://gpu:11434/v1"}`, "http://gpu:11434/v1", "", ""},
		{"missing key env is an error", `{name: m, preset: mistral}`, "", "", "MISTRAL_API_KEY"},
		{"unknown preset", `{name: x, preset: nope}`, "", "", "unknown preset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte("version: weir.dev/v1alpha1\nbackends:\n  - "+tt.backend+"\nmodels: []\n"), lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b := c.Backends[0]
			if b.Provider != "openai" || b.BaseURL != tt.wantURL {
				t.Errorf("backend = %+v", b)
			}
			got := ""
			if b.Credential != nil {
				got = string(b.Credential.Key)
			}
			if got != tt.wantKey {
				t.Errorf("key = %q, want %q", got, tt.wantKey)
			}
		})
	}
	for _, name := range Presets() {
		if p := presets[name]; checkBaseURL(p.BaseURL) != nil {
			t.Errorf("preset %s: bad base_url %q", name, p.BaseURL)
		}
	}
}
