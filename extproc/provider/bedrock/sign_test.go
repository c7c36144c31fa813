package bedrock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/weir-ai/weir/config"
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
