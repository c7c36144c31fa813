package extproc

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
)

// A provider credential the gateway cannot get is the operator's problem:
// the client gets one generic 503, and the reason goes to the log with the
// request id and the backend, without the secret.
func TestCredentialFailuresStayInTheLog(t *testing.T) {
	const (
		awsToken    = "container-auth-token-7f3a"
		entraSecret = "entra-client-secret-9c1d"
	)
	// Each case's endpoint holds its secret and fails in its own way.
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"code":"AccessDenied","message":"role weir-bedrock may not be assumed"}`)
	}))
	t.Cleanup(aws.Close)
	google := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":"internal_failure","error_description":"backend error"}`)
	}))
	t.Cleanup(google.Close)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	sa, saSecret := serviceAccountFile(t, google.URL+"/token")

	tests := []struct {
		name, backend, yaml string
		env                 map[string]string
		wait                time.Duration // the request's credential deadline; 0 keeps the default
		reason              string        // in the log line
		secrets             []string      // nowhere in the log or the reply
	}{
		{
			name: "aws credentials endpoint refuses", backend: "br",
			yaml: `
  - name: br
    provider: bedrock
    base_url: https://bedrock-runtime.us-east-1.amazonaws.com`,
			env: map[string]string{
				"AWS_CONTAINER_CREDENTIALS_FULL_URI": aws.URL + "/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": awsToken,
				"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
				"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"), "AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"),
				"AWS_EC2_METADATA_DISABLED": "true",
			},
			reason: "AccessDenied", secrets: []string{awsToken},
		},
		{
			name: "oauth token endpoint 500", backend: "vx",
			yaml: `
  - name: vx
    provider: vertex
    base_url: https://us-central1-aiplatform.googleapis.com
    credential: {file: ` + sa + `}
    options: {location: us-central1}`,
			reason: "500 Internal Server Error", secrets: []string{saSecret, "PRIVATE KEY"},
		},
		{
			name: "oauth token endpoint hangs", backend: "az",
			yaml: `
  - name: az
    provider: azure
    base_url: https://res.openai.azure.com
    credential: {value: ` + entraSecret + `}
    options: {auth: entra, client_id: app-1, token_url: ` + hang.URL + `/token}`,
			wait:   10 * time.Millisecond,
			reason: "deadline exceeded", secrets: []string{entraSecret},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			if tc.wait > 0 {
				old := provider.CredentialTimeout
				provider.CredentialTimeout = tc.wait
				t.Cleanup(func() { provider.CredentialTimeout = old })
			}
			var log lockedBuffer
			s := New(Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
			t.Cleanup(func() { _ = s.Close() })
			// oai is where an attempt retried on tc.backend was prepared
			// first, for the upstream-level filter.
			cfg := "version: weir.dev/v1alpha1\nbackends:" + tc.yaml + `
  - {name: oai, provider: openai, base_url: "https://api.openai.example/v1"}
models:
  - name: m
    provider_model: gpt-4o-mini
    backends: [` + tc.backend + "]\n"
			if err := s.LoadConfig([]byte(cfg), os.LookupEnv); err != nil {
				t.Fatal(err)
			}
			c := serveTest(t, s)
			for _, level := range []string{config.FilterLevelRouter, config.FilterLevelUpstream} {
				log.Reset()
				checkCredentialReply(t, level, attempt(t, c, level, tc.backend), &log, tc.backend, tc.reason, tc.secrets)
			}
		})
	}
}

// attempt sends a chat request for model m (served by backend) at the
// router level, or at the upstream level an attempt moved from backend oai
// to backend, and returns the last reply.
func attempt(t *testing.T, c extprocv3.ExternalProcessorClient, level, backend string) *extprocv3.ProcessingResponse {
	t.Helper()
	st := openStream(t, c, level)
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	if level == config.FilterLevelRouter {
		return roundTripRequest(t, st, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, nil)
	}
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{config.MetadataNamespace: stringStruct(
		config.MetaBackend, "oai", config.MetaModel, "gpt-4o-mini", config.MetaEndpoint, "chat", config.MetaRequestID, "req-up-1",
		config.MetaClientModel, "gpt-4o-mini", config.MetaStream, "false", config.MetaHeaders, ":path,:authority,content-type")}}
	roundTrip(t, st, &extprocv3.ProcessingRequest{MetadataContext: md, Attributes: attrs(map[string]string{config.AttrHostBackend: backend}),
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: headerMap(":path", "/v1/chat/completions", config.HeaderBackend, "oai")}}})
	return roundTrip(t, st, &extprocv3.ProcessingRequest{MetadataContext: md,
		Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
}

// checkCredentialReply checks a credential failure's reply (a generic 503)
// and its log line (request id, backend and reason, no secret).
func checkCredentialReply(t *testing.T, level string, resp *extprocv3.ProcessingResponse, log *lockedBuffer, backend, reason string, secrets []string) {
	t.Helper()
	ir := resp.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("%s: reply %v, want an immediate 503", level, resp)
	}
	body := string(ir.GetBody())
	if ir.GetStatus().GetCode() != 503 ||
		gjson.Get(body, "error.message").Str != "the gateway could not obtain credentials for the provider" ||
		gjson.Get(body, "error.code").Str != "credentials_unavailable" {
		t.Errorf("%s: reply %d %s, want 503 credentials_unavailable with the generic message", level, ir.GetStatus().GetCode(), body)
	}
	id := mutated(ir.GetHeaders())[config.HeaderRequestID]
	found := false
	for _, l := range strings.Split(log.String(), "\n") {
		found = found || (id != "" && strings.Contains(l, "request_id="+id) &&
			strings.Contains(l, "backend="+backend) && strings.Contains(l, reason))
	}
	if !found {
		t.Errorf("%s: no log line with request id %q, backend %s and reason %q in:\n%s", level, id, backend, reason, log.String())
	}
	if strings.Contains(body, reason) {
		t.Errorf("%s: the reply tells the reason: %s", level, body)
	}
	for _, sec := range secrets {
		if strings.Contains(log.String(), sec) || strings.Contains(body, sec) {
			t.Errorf("%s: secret %q leaked", level, sec)
		}
	}
}

// serviceAccountFile writes a Google service-account JSON key whose
// token_uri is tokenURL and returns its path and a piece of its private key.
func serviceAccountFile(t *testing.T, tokenURL string) (path, secret string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "weir-test", "private_key_id": "k1", "private_key": pemKey,
		"client_email": "weir@weir-test.iam.gserviceaccount.com", "token_uri": tokenURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// A line from the middle of the key's base64.
	return path, strings.Split(pemKey, "\n")[5]
}
