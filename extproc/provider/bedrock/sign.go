package bedrock

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
)

// Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html),
// computed by aws-sdk-go-v2's signer over the request as Envoy will send
// it: POST, the backend's host, the base URL prefix + operation path, and
// the translated body. Signed headers are host and x-amz-date (plus
// x-amz-security-token for temporary credentials); content-length and
// content-type are left unsigned since Envoy sets them afterwards.

// modelPath is "/model/<escaped id>/<op>" and its unescaped form.
func modelPath(id, op string) (escaped, raw string) {
	return "/model/" + httpbinding.EscapePath(id, true) + "/" + op, "/model/" + id + "/" + op
}

// sign returns the upstream request for path (escaped, and raw for the
// signer's URL) and body, with its SigV4 headers. Retrieving credentials
// is one atomic read while they are fresh; when they have expired the
// request waits for the refresh, at most credTimeout and as long as ctx
// lasts. Failures are *errs.CredentialError: the AWS error names roles
// and accounts, so it goes to the log, not to the client.
func (t *translator) sign(ctx context.Context, escaped, raw string, body []byte) (*provider.Upstream, error) {
	ctx, cancel := provider.CredentialContext(ctx, t.credTimeout)
	defer cancel()
	creds, err := t.creds.Retrieve(ctx)
	if err != nil {
		return nil, &errs.CredentialError{Backend: t.backend, Err: fmt.Errorf("AWS credentials: %w", err)}
	}
	sum := sha256.Sum256(body)
	r := &http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Scheme: "https", Host: t.host, Path: t.prefix + raw, RawPath: t.prefix + escaped},
		Host:   t.host,
		Header: make(http.Header, 3),
	}
	if err := t.signer.SignHTTP(ctx, creds, r, hex.EncodeToString(sum[:]), SigningName, t.region, now()); err != nil {
		return nil, &errs.CredentialError{Backend: t.backend, Err: fmt.Errorf("SigV4 signing: %w", err)}
	}
	up := &provider.Upstream{Path: escaped, Body: body, Headers: make([]provider.Header, 0, 4)}
	up.Headers = append(up.Headers,
		provider.Header{Key: "authorization", Value: r.Header.Get("Authorization")},
		provider.Header{Key: "x-amz-date", Value: r.Header.Get("X-Amz-Date")},
	)
	if tok := r.Header.Get("X-Amz-Security-Token"); tok != "" {
		up.Headers = append(up.Headers, provider.Header{Key: "x-amz-security-token", Value: tok})
	}
	return up, nil
}
