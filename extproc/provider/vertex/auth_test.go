package vertex

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/oauthcache"
	"github.com/weir-ai/weir/extproc/provider/oauthcache/oauthcachetest"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

func rsaKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testKey = k
	})
	return testKey
}

// tokenServer is a fake Google token endpoint: it checks the JWT bearer
// grant (RS256 signature, issuer, audience, scope) and hands out
// ya29.fake-1, ya29.fake-2...
type tokenServer struct {
	*httptest.Server
	key   *rsa.PublicKey
	n     atomic.Int64
	fail  atomic.Bool
	mu    sync.Mutex
	errs  []string
	email string
}

func newTokenServer(t testing.TB) *tokenServer {
	ts := &tokenServer{key: &rsaKey(t).PublicKey, email: "weir@my-proj.iam.gserviceaccount.com"}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) bad(w http.ResponseWriter, msg string) {
	ts.mu.Lock()
	ts.errs = append(ts.errs, msg)
	ts.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(400)
	fmt.Fprintf(w, `{"error":"invalid_grant","error_description":%q}`, msg)
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	if ts.fail.Load() {
		w.WriteHeader(500)
		fmt.Fprint(w, `{"error":"internal_failure"}`)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/token" {
		ts.bad(w, "not POST /token")
		return
	}
	if err := r.ParseForm(); err != nil {
		ts.bad(w, err.Error())
		return
	}
	if g := r.PostForm.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		ts.bad(w, "grant_type "+g)
		return
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		ts.bad(w, "assertion is not a JWT")
		return
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		ts.bad(w, "signature encoding")
		return
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(ts.key, crypto.SHA256, sum[:], sig); err != nil {
		ts.bad(w, "bad signature")
		return
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Iss, Scope, Aud string
		Exp, Iat        int64
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		ts.bad(w, "claims")
		return
	}
	if claims.Iss != ts.email || claims.Scope != Scope || claims.Aud != ts.URL+"/token" || claims.Exp <= claims.Iat {
		ts.bad(w, fmt.Sprintf("claims %+v", claims))
		return
	}
	n := ts.n.Add(1)
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"access_token":"ya29.fake-%d","expires_in":3599,"token_type":"Bearer"}`, n)
}

func (ts *tokenServer) problems() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.errs...)
}

// serviceAccountJSON is a key whose token_uri is the fake endpoint.
func serviceAccountJSON(t testing.TB, ts *tokenServer) string {
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey(t))
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	sa, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "sa-proj",
		"private_key_id": "k1",
		"private_key":    string(pemKey),
		"client_email":   ts.email,
		"client_id":      "123",
		"token_uri":      ts.URL + "/token",
	})
	return string(sa)
}

// withClock makes New use clk for the token cache.
func withClock(t testing.TB, clk *oauthcachetest.Clock, log *bytes.Buffer) {
	old := cacheOptions
	cacheOptions = func(o *oauthcache.Options) {
		o.Now, o.After = clk.Now, clk.After
		if log != nil {
			o.Log = slog.New(slog.NewTextHandler(log, nil))
		}
	}
	t.Cleanup(func() { cacheOptions = old })
}

func newWithKey(t testing.TB, sa string) *translator {
	t.Helper()
	tr, err := New(&config.Backend{Name: "vx", Provider: "vertex",
		Options:    map[string]string{"location": "us-central1"},
		Credential: &config.Credential{Key: config.Secret(sa)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.(Translator).Close)
	return tr.(*translator)
}

func step(t testing.TB, clk *oauthcachetest.Clock) time.Duration {
	t.Helper()
	d, ok := clk.NextWait(20 * time.Second)
	if !ok {
		t.Fatal("the token refresher did not take its next step")
	}
	return d
}

var chatReq = []byte(`{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"hi"}]}`)

func TestServiceAccountTokenCachedAndRefreshed(t *testing.T) {
	ts := newTokenServer(t)
	clk := oauthcachetest.NewClock(time.Now())
	withClock(t, clk, nil)
	tr := newWithKey(t, serviceAccountJSON(t, ts))
	d := step(t, clk)
	if p := ts.problems(); len(p) > 0 {
		t.Fatalf("token endpoint rejected the grant: %v", p)
	}
	// The JWT flow reports the expiry on the wall clock, so allow the
	// moment the exchange took.
	if want := 3599*time.Second - oauthcache.DefaultMargin; d > want || d < want-5*time.Second {
		t.Fatalf("refresh scheduled in %v, want %v", d, want)
	}
	// The project came from the key's project_id.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: chatReq})
				if err != nil {
					t.Error(err)
					return
				}
				if len(up.Headers) != 1 || up.Headers[0] != (provider.Header{Key: "authorization", Value: "Bearer ya29.fake-1"}) {
					t.Errorf("headers %v", up.Headers)
					return
				}
				if !strings.HasPrefix(up.Path, "/v1/projects/sa-proj/locations/us-central1/") {
					t.Errorf("path %s", up.Path)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := ts.n.Load(); n != 1 {
		t.Fatalf("%d token fetches for 1000 requests, want 1", n)
	}
	// Five minutes before expiry the refresher fetches a new token; the
	// requests in between never wait for it.
	clk.Advance(d)
	clk.Fire()
	step(t, clk)
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: chatReq})
	if err != nil {
		t.Fatal(err)
	}
	if up.Headers[0].Value != "Bearer ya29.fake-2" || ts.n.Load() != 2 {
		t.Fatalf("after refresh: %v, %d fetches", up.Headers, ts.n.Load())
	}
}

func TestNoTokenIs503(t *testing.T) {
	ts := newTokenServer(t)
	ts.fail.Store(true)
	clk := oauthcachetest.NewClock(time.Now())
	var log bytes.Buffer
	withClock(t, clk, &log)
	sa := serviceAccountJSON(t, ts)
	tr := newWithKey(t, sa)
	if d := step(t, clk); d != oauthcache.DefaultMinRetry {
		t.Fatalf("retry in %v", d)
	}
	_, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: chatReq})
	if !errors.Is(err, errs.ErrUnavailable) || errs.Status(err) != 503 {
		t.Fatalf("error %v, want a 503", err)
	}
	msg := err.Error()
	if !strings.Contains(log.String(), "internal_failure") {
		t.Fatalf("the fetch failure was not logged: %s", log.String())
	}
	ts.fail.Store(false)
	clk.Advance(time.Second)
	clk.Fire()
	step(t, clk)
	up, err := tr.TranslateRequest(&provider.Request{Endpoint: provider.EndpointChat, Body: chatReq})
	if err != nil || up.Headers[0].Value != "Bearer ya29.fake-1" {
		t.Fatalf("after recovery: %v, %v", up, err)
	}
	// Neither the private key nor a token reached the log or the error.
	for _, s := range []string{"PRIVATE KEY", "ya29.", "MII"} {
		if strings.Contains(log.String(), s) || strings.Contains(msg, s) {
			t.Errorf("%q leaked into the log or error", s)
		}
	}
	if strings.Contains(fmt.Sprint(config.Secret(sa)), "PRIVATE") {
		t.Error("config.Secret prints the key")
	}
}
