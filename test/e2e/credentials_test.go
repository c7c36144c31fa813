package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weir-ai/weir/test/devstack"
	"github.com/weir-ai/weir/test/fakeprovider"
)

// oauthEndpoint is the token endpoint of both the Vertex service account
// (/vertex) and the Entra ID app (/entra). It answers the first fetch of
// each; any later fetch gets a 500, so a token cache rebuilt by a reload
// never gets a token and its requests fail.
type oauthEndpoint struct {
	*httptest.Server
	hits sync.Map // path -> *atomic.Int64
}

const (
	vertexToken = "ya29.reload-vertex"
	entraToken  = "eyJ0.reload-entra"
)

func newOAuthEndpoint(t *testing.T) *oauthEndpoint {
	o := &oauthEndpoint{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := o.hits.LoadOrStore(r.URL.Path, new(atomic.Int64))
		w.Header().Set("content-type", "application/json")
		if n.(*atomic.Int64).Add(1) > 1 {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":"server_error","error_description":"fetched again"}`)
			return
		}
		tok := vertexToken
		if r.URL.Path == "/entra" {
			tok = entraToken
		}
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":3599,"token_type":"Bearer"}`, tok)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *oauthEndpoint) fetches(path string) int64 {
	n, ok := o.hits.Load(path)
	if !ok {
		return 0
	}
	return n.(*atomic.Int64).Load()
}

// serviceAccountKey writes a Google service-account JSON key whose
// token_uri is tokenURL.
func serviceAccountKey(t *testing.T, tokenURL string) string {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "weir-reload", "private_key_id": "k1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "weir@weir-reload.iam.gserviceaccount.com", "token_uri": tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// reloadConfig is a config with a Vertex backend (service-account key) and
// an Azure backend with Entra ID; generation n adds n extra model aliases,
// an edit that leaves both credentials as they were.
func reloadConfig(saPath, tokenBase string, n int) string {
	var aliases []string
	for i := range n {
		aliases = append(aliases, fmt.Sprintf("extra-%d", i))
	}
	return fmt.Sprintf(`version: weir.dev/v1alpha1
backends:
  - name: vx
    provider: vertex
    base_url: ${WEIR_FAKE_VERTEX_URL}
    credential: {file: %s}
    options: {location: us-central1}
  - name: az
    provider: azure
    base_url: ${WEIR_FAKE_AZURE_URL}
    credential: {value: entra-client-secret}
    options: {auth: entra, client_id: app-1, token_url: %s/entra}
models:
  - name: vx-gemini
    provider_model: gemini-2.5-flash
    backends: [vx]
  - name: az-gpt
    provider_model: gpt-4o-mini
    aliases: [%s]
    backends: [az]
`, saPath, tokenBase, strings.Join(aliases, ", "))
}

// TestReloadUnderLoadKeepsOAuthTokens reloads the config again and again
// while requests flow to Vertex and Azure Entra ID backends. The tokens
// fetched at start-up must carry over: no request gets a 503 and each token
// endpoint is asked once, not once per reload.
func TestReloadUnderLoadKeepsOAuthTokens(t *testing.T) {
	oe := newOAuthEndpoint(t)
	sa := serviceAccountKey(t, oe.URL+"/vertex")
	cfgPath := filepath.Join(t.TempDir(), "weir.yaml")
	if err := os.WriteFile(cfgPath, []byte(reloadConfig(sa, oe.URL, 0)), 0o600); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", Logger: quiet, ConfigPath: cfgPath,
		// Reloads are the test's (Stack.Reload), not the poller's.
		ReloadEvery: 1 << 40,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// The fakes accept only the tokens the endpoint hands out.
	st.Fake[fakeprovider.Vertex].RequireKey(vertexToken)
	st.Fake[fakeprovider.Azure].RequireKey(entraToken)

	url := st.URL + "/v1/chat/completions"
	models := []string{"vx-gemini", "az-gpt"}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		bodies   []string
	)
	// send records a transport failure as status 0: it runs on the load
	// goroutines too, where the test cannot stop.
	send := func(model string) {
		code, b := 0, []byte(nil)
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
		if err == nil {
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		mu.Lock()
		defer mu.Unlock()
		statuses[code]++
		if code != 200 && len(bodies) < 3 {
			bodies = append(bodies, fmt.Sprintf("%s: %d %s %v", model, code, b, err))
		}
	}
	// The first request of each backend waits for its first token.
	for _, m := range models {
		send(m)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					send(models[w%len(models)])
				}
			}
		})
	}
	const reloads = 10
	for n := 1; n <= reloads; n++ {
		if err := os.WriteFile(cfgPath, []byte(reloadConfig(sa, oe.URL, n)), 0o600); err != nil {
			t.Fatal(err)
		}
		if applied, err := st.Reload(); err != nil || !applied {
			t.Fatalf("reload %d: applied %v, %v", n, applied, err)
		}
		// Each new config serves at least one request per backend
		// besides the background load.
		for _, m := range models {
			send(m)
		}
	}
	close(stop)
	wg.Wait()

	if st.Config().Models[1].Aliases[reloads-1] != fmt.Sprintf("extra-%d", reloads-1) {
		t.Fatalf("the last reload is not running: %v", st.Config().Models[1].Aliases)
	}
	if statuses[503] > 0 || len(statuses) != 1 {
		t.Errorf("statuses %v, want only 200; first failures: %v", statuses, bodies)
	}
	for _, p := range []string{"/vertex", "/entra"} {
		if n := oe.fetches(p); n != 1 {
			t.Errorf("token endpoint %s asked %d times over %d reloads, want once", p, n, reloads)
		}
	}
}
