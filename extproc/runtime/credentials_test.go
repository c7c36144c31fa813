package runtime

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/credsource"
)

// TestCompileKeepsCredentialSources compiles a series of configs on one
// pool, as reloads do: a backend whose credential is unchanged keeps its
// token (no fetch), a changed credential gets a fresh source, a failed
// compile changes nothing, and releasing the last config closes every
// source.
func TestCompileKeepsCredentialSources(t *testing.T) {
	var mu sync.Mutex
	fetches := map[string]int{} // by client secret
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := r.PostFormValue("client_secret")
		mu.Lock()
		fetches[secret]++
		mu.Unlock()
		w.Header().Set("content-type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%s","expires_in":3599,"token_type":"Bearer"}`, secret)
	}))
	t.Cleanup(ts.Close)
	compile := func(pool *credsource.Pool, secret string, models int, broken bool) (*Runtime, error) {
		t.Helper()
		raw := `version: weir.dev/v1alpha1
backends:
  - name: az
    provider: azure
    base_url: https://res.openai.azure.com
    credential: {value: ` + secret + `}
    options: {auth: entra, client_id: app-1, token_url: ` + ts.URL + `/token}
  - name: br
    provider: bedrock
    base_url: https://bedrock-runtime.us-east-1.amazonaws.com
    aws: {access_key_id: AKIDEXAMPLE, secret_access_key: wJalrXUtnFEMI}
models:
`
		for i := range models {
			raw += fmt.Sprintf("  - {name: m%d, provider_model: gpt-4o, backends: [az]}\n", i)
		}
		cfg, err := config.Parse([]byte(raw), nil)
		if err != nil {
			t.Fatal(err)
		}
		if broken {
			// Past validation, as a provider option only the provider
			// checks would be.
			cfg.Backends[1].BaseURL = "::"
		}
		return Compile(cfg, []byte(raw), pool)
	}
	token := func(rt *Runtime) string {
		t.Helper()
		up, err := rt.Backends["az"].Translator.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat,
			Model: "gpt-4o", Body: []byte(`{"model":"gpt-4o","messages":[]}`), Ctx: context.Background()})
		if err != nil {
			t.Fatal(err)
		}
		return up.Headers[0].Value
	}

	pool := credsource.NewPool()
	steps := []struct {
		name    string
		secret  string
		models  int
		broken  bool
		fetches map[string]int
	}{
		{"start", "s1", 1, false, map[string]int{"s1": 1}},
		{"add a model", "s1", 2, false, map[string]int{"s1": 1}},
		{"add another", "s1", 3, false, map[string]int{"s1": 1}},
		{"failed compile", "s1", 4, true, map[string]int{"s1": 1}},
		{"rotate the secret", "s2", 4, false, map[string]int{"s1": 1, "s2": 1}},
	}
	var cur *Runtime
	for _, st := range steps {
		rt, err := compile(pool, st.secret, st.models, st.broken)
		if st.broken {
			if err == nil {
				t.Fatalf("%s: compiled", st.name)
			}
		} else {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if got := token(rt); got != "Bearer tok-"+st.secret {
				t.Fatalf("%s: authorization %q", st.name, got)
			}
			if cur != nil {
				cur.Release()
			}
			cur = rt
		}
		mu.Lock()
		got := fmt.Sprint(fetches)
		mu.Unlock()
		if want := fmt.Sprint(st.fetches); got != want {
			t.Errorf("%s: token fetches %s, want %s", st.name, got, want)
		}
		// One token cache and one AWS credential cache: the replaced
		// config's are closed, the failed compile's never kept.
		if n := pool.Len(); n != 2 {
			t.Errorf("%s: %d live sources, want 2", st.name, n)
		}
	}
	cur.Release()
	if n := pool.Len(); n != 0 {
		t.Fatalf("%d live sources after the last release, want 0", n)
	}
	if !strings.HasPrefix(token(cur), "Bearer tok-s2") {
		t.Fatal("a released config's token is no longer readable before it expires")
	}
}
