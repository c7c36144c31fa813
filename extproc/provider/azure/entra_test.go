package azure

import (
	"bytes"
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

const testSecret = "entra-client-secret~value"

// entraServer is a fake Microsoft identity platform token endpoint for the
// client-credentials grant.
type entraServer struct {
	*httptest.Server
	n    atomic.Int64
	fail atomic.Bool
	mu   sync.Mutex
	bad  []string
}

func newEntraServer(t *testing.T) *entraServer {
	es := &entraServer{}
	es.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if es.fail.Load() {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		_ = r.ParseForm()
		f := r.PostForm
		if r.URL.Path != "/tenant-1/oauth2/v2.0/token" || f.Get("grant_type") != "client_credentials" ||
			f.Get("client_id") != "app-1" || f.Get("client_secret") != testSecret || f.Get("scope") != EntraScope {
			es.mu.Lock()
			es.bad = append(es.bad, r.URL.Path+" "+f.Encode())
			es.mu.Unlock()
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"invalid_request"}`)
			return
		}
		n := es.n.Add(1)
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.entra-%d"}`, n)
	}))
	t.Cleanup(es.Close)
	return es
}

func withClock(t *testing.T, clk *oauthcachetest.Clock, log *bytes.Buffer) {
	old := cacheOptions
	cacheOptions = func(o *oauthcache.Options) {
		o.Now, o.After = clk.Now, clk.After
		if log != nil {
			o.Log = slog.New(slog.NewTextHandler(log, nil))
		}
	}
	t.Cleanup(func() { cacheOptions = old })
}

func newEntra(t *testing.T, es *entraServer) *translator {
	t.Helper()
	tr, err := New(&config.Backend{Name: "az", Provider: "azure", BaseURL: "https://res.openai.azure.com",
		Options: map[string]string{"auth": "entra", "tenant_id": "tenant-1", "client_id": "app-1",
			"token_url": es.URL + "/tenant-1/oauth2/v2.0/token"},
		Credential: &config.Credential{Key: testSecret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.(Translator).Close)
	return tr.(*translator)
}

func nextStep(t *testing.T, clk *oauthcachetest.Clock) time.Duration {
	t.Helper()
	d, ok := clk.NextWait(20 * time.Second)
	if !ok {
		t.Fatal("the token refresher did not take its next step")
	}
	return d
}

var entraReq = &provider.Request{Endpoint: provider.EndpointChat, Model: "gpt-4o", Body: []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)}

func TestEntraTokenCachedAndRefreshed(t *testing.T) {
	es := newEntraServer(t)
	clk := oauthcachetest.NewClock(time.Now())
	withClock(t, clk, nil)
	tr := newEntra(t, es)
	d := nextStep(t, clk)
	if len(es.bad) > 0 {
		t.Fatalf("token endpoint rejected: %v", es.bad)
	}
	// clientcredentials reports the expiry on the wall clock; the cache
	// carries it over in whole seconds.
	if want := 3599*time.Second - oauthcache.DefaultMargin; d > want || d < want-2*time.Second {
		t.Fatalf("refresh in %v, want %v", d, want)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 50 {
				up, err := tr.TranslateRequest(entraReq)
				if err != nil {
					t.Error(err)
					return
				}
				if len(up.Headers) != 1 || up.Headers[0] != (provider.Header{Key: "authorization", Value: "Bearer eyJ0eXAi.entra-1"}) {
					t.Errorf("headers %v", up.Headers)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := es.n.Load(); n != 1 {
		t.Fatalf("%d token fetches for 1000 requests, want 1", n)
	}
	clk.Advance(d - time.Minute)
	clk.Fire()
	nextStep(t, clk)
	if es.n.Load() != 1 {
		t.Fatal("refreshed more than five minutes before expiry")
	}
	clk.Advance(time.Minute)
	clk.Fire()
	nextStep(t, clk)
	up, err := tr.TranslateRequest(entraReq)
	if err != nil || up.Headers[0].Value != "Bearer eyJ0eXAi.entra-2" {
		t.Fatalf("after refresh: %v, %v", up, err)
	}
	if up.Path != "/openai/deployments/gpt-4o/chat/completions?api-version="+DefaultAPIVersion {
		t.Errorf("path %s", up.Path)
	}
}

func TestEntraUnavailableThenRecovers(t *testing.T) {
	es := newEntraServer(t)
	es.fail.Store(true)
	clk := oauthcachetest.NewClock(time.Now())
	var log bytes.Buffer
	withClock(t, clk, &log)
	tr := newEntra(t, es)
	nextStep(t, clk)
	_, err := tr.TranslateRequest(entraReq)
	if !errors.Is(err, errs.ErrUnavailable) || errs.Status(err) != 503 {
		t.Fatalf("error %v, want 503", err)
	}
	if !strings.Contains(log.String(), "AADSTS7000215") {
		t.Errorf("the failure was not logged: %s", log.String())
	}
	if strings.Contains(log.String(), testSecret) || strings.Contains(err.Error(), testSecret) {
		t.Error("the client secret leaked")
	}
	es.fail.Store(false)
	clk.Advance(time.Second)
	clk.Fire()
	nextStep(t, clk)
	if up, err := tr.TranslateRequest(entraReq); err != nil || up.Headers[0].Value != "Bearer eyJ0eXAi.entra-1" {
		t.Fatalf("after recovery: %v, %v", up, err)
	}
}

func TestEntraOptions(t *testing.T) {
	if got := EntraTokenURL("contoso.onmicrosoft.com"); got != "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token" {
		t.Errorf("token URL %s", got)
	}
	cases := []struct {
		opts map[string]string
		cred string
		want string
	}{
		{map[string]string{"auth": "entra", "tenant_id": "t"}, "s", "client_id"},
		{map[string]string{"auth": "entra", "client_id": "c"}, "s", "tenant_id"},
		{map[string]string{"auth": "entra", "tenant_id": "t", "client_id": "c"}, "", "client secret"},
		{map[string]string{"auth": "entra", "client_id": "c", "token_url": "ftp://x"}, "s", "token_url"},
		{map[string]string{"auth": "magic"}, "s", "api_key or entra"},
		{map[string]string{"tenant_id": "t"}, "s", "need auth: entra"},
	}
	for _, c := range cases {
		b := &config.Backend{Name: "az", Provider: "azure", BaseURL: "https://x", Options: c.opts}
		if c.cred != "" {
			b.Credential = &config.Credential{Key: config.Secret(c.cred)}
		}
		if _, err := New(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.opts, err, c.want)
		}
	}
	// api_key stays the default.
	tr, err := New(&config.Backend{Name: "az", Provider: "azure", BaseURL: "https://x", Options: map[string]string{"auth": "api_key"},
		Credential: &config.Credential{Key: "k"}})
	if err != nil {
		t.Fatal(err)
	}
	up, err := tr.TranslateRequest(entraReq)
	if err != nil || len(up.Headers) != 1 || up.Headers[0] != (provider.Header{Key: "api-key", Value: "k"}) {
		t.Fatalf("api_key auth: %v, %v", up, err)
	}
}
