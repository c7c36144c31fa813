package bedrock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

// TestSigV4 checks the headers against an independent run of the AWS
// signer over the request Envoy will send (escaped path on the backend's
// host, the translated body), and that the signature covers the body.
func TestSigV4(t *testing.T) {
	for _, tc := range []struct {
		name, base, token, wantPath string
	}{
		{"static", testBaseURL, "", "/model/amazon.nova-lite-v1%3A0/converse"},
		{"session token and prefix", "https://bedrock-runtime.eu-west-3.amazonaws.com/proxy/", "FwoGZXIvYXdzEXAMPLE", "/model/amazon.nova-lite-v1%3A0/converse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBackend()
			b.BaseURL = tc.base
			b.AWS.SessionToken = config.Secret(tc.token)
			tri, err := New(b)
			if err != nil {
				t.Fatal(err)
			}
			tr := tri.(*translator)
			req := &provider.Request{Endpoint: provider.EndpointChat, Model: "amazon.nova-lite-v1:0",
				Body: []byte(`{"model":"nova","messages":[{"role":"user","content":"hi"}]}`)}
			up, err := tr.TranslateRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			if up.Path != tc.wantPath {
				t.Errorf("path %q, want %q", up.Path, tc.wantPath)
			}
			got := map[string]string{}
			for _, h := range up.Headers {
				got[h.Key] = h.Value
			}
			u, _ := url.Parse(tc.base)
			prefix := strings.TrimRight(u.Path, "/")
			r, _ := http.NewRequest("POST", "https://"+u.Host+prefix+up.Path, nil)
			sum := sha256.Sum256(up.Body)
			creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: tc.token}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "bedrock", regionFromHost(u.Host), fixedNow); err != nil {
				t.Fatal(err)
			}
			if got["authorization"] != r.Header.Get("Authorization") || got["x-amz-date"] != r.Header.Get("X-Amz-Date") {
				t.Errorf("headers %v\nwant Authorization %q", got, r.Header.Get("Authorization"))
			}
			if got["x-amz-security-token"] != tc.token {
				t.Errorf("security token %q, want %q", got["x-amz-security-token"], tc.token)
			}
			wantScope := "Credential=AKIDEXAMPLE/20250102/" + regionFromHost(u.Host) + "/bedrock/aws4_request"
			if !strings.Contains(got["authorization"], wantScope) {
				t.Errorf("authorization %q lacks %q", got["authorization"], wantScope)
			}
			// A different body must give a different signature.
			req2 := *req
			req2.Body = []byte(`{"model":"nova","messages":[{"role":"user","content":"hi!"}]}`)
			up2, err := tr.TranslateRequest(&req2)
			if err != nil {
				t.Fatal(err)
			}
			if up2.Headers[0].Value == up.Headers[0].Value {
				t.Error("signature does not cover the body")
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    config.Backend
		ok   bool
	}{
		{"half keys", config.Backend{BaseURL: testBaseURL, AWS: &config.AWSAuth{AccessKeyID: "A"}}, false},
		{"bad url", config.Backend{BaseURL: "::", AWS: &config.AWSAuth{AccessKeyID: "A", SecretAccessKey: "B"}}, false},
		{"no region", config.Backend{BaseURL: "http://127.0.0.1:9", AWS: &config.AWSAuth{AccessKeyID: "A", SecretAccessKey: "B"}}, false},
		{"explicit region", config.Backend{BaseURL: "http://127.0.0.1:9", AWS: &config.AWSAuth{Region: "us-west-2", AccessKeyID: "A", SecretAccessKey: "B"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(&tc.b)
			if (err == nil) != tc.ok {
				t.Errorf("err = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if got := regionFromHost("bedrock-runtime-fips.us-gov-west-1.amazonaws.com"); got != "us-gov-west-1" {
		t.Errorf("region %q", got)
	}
}

func TestSecretsRedacted(t *testing.T) {
	a := config.AWSAuth{AccessKeyID: "AKID", SecretAccessKey: "s3cr3t", SessionToken: "tok"}
	if s := strings.Join([]string{a.AccessKeyID.String(), a.SecretAccessKey.String(), a.SessionToken.String()}, ","); strings.Contains(s, "s3cr3t") || strings.Contains(s, "tok") {
		t.Error(s)
	}
}

// hangingCreds blocks until its context is done, reporting the context.
type hangingCreds struct{ ctxs chan context.Context }

func (h hangingCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	h.ctxs <- ctx
	<-ctx.Done()
	return aws.Credentials{}, ctx.Err()
}

// failingCreds fails at once with text that must stay out of replies.
type failingCreds struct{}

func (failingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("AccessDenied: not authorized to perform sts:AssumeRoleWithWebIdentity on arn:aws:iam::123456789012:role/weir")
}

// TestCredentialsBounded: a credential source that hangs holds a request
// no longer than its context and provider.CredentialTimeout, and what it
// says reaches the client only as the generic credential error.
func TestCredentialsBounded(t *testing.T) {
	tri, err := New(testBackend())
	if err != nil {
		t.Fatal(err)
	}
	tr := tri.(*translator)
	req := provider.Request{Endpoint: provider.EndpointChat, Model: "amazon.nova-lite-v1:0",
		Body: []byte(`{"model":"nova","messages":[{"role":"user","content":"hi"}]}`)}

	// A caller that gives up (Envoy resetting the stream) ends the wait;
	// with no caller deadline the translator still sets one.
	h := hangingCreds{ctxs: make(chan context.Context, 1)}
	tr.creds = h
	ctx, cancel := context.WithCancel(context.Background())
	req.Ctx = ctx
	done := make(chan error, 1)
	go func() {
		_, err := tr.TranslateRequest(&req)
		done <- err
	}()
	seen := <-h.ctxs
	dl, ok := seen.Deadline()
	if !ok || time.Until(dl) > provider.CredentialTimeout {
		t.Fatalf("credentials retrieved with deadline %v (set %v), want one within %v", dl, ok, provider.CredentialTimeout)
	}
	cancel()
	checkCredentialError(t, <-done, context.Canceled)

	// The deadline itself ends it.
	tr.credTimeout = time.Nanosecond
	req.Ctx = context.Background()
	_, err = tr.TranslateRequest(&req)
	<-h.ctxs
	checkCredentialError(t, err, context.DeadlineExceeded)

	tr.creds = failingCreds{}
	_, err = tr.TranslateRequest(&req)
	checkCredentialError(t, err, nil)
	if body := string(errs.Body(err)); strings.Contains(body, "AccessDenied") || strings.Contains(body, "arn:aws") {
		t.Errorf("client body %s carries the reason", body)
	}
	if !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("error %v lost the reason the log needs", err)
	}
}

func checkCredentialError(t *testing.T, err error, cause error) {
	t.Helper()
	var ce *errs.CredentialError
	if !errors.As(err, &ce) || ce.Backend != testBackend().Name || errs.Status(err) != 503 {
		t.Fatalf("error %v, want a 503 credential error for backend %s", err, testBackend().Name)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Fatalf("error %v, want it caused by %v", err, cause)
	}
}
