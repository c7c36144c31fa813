package errs

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestStatusAndBody(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantType   string
		wantCode   string
		wantMsg    string
	}{
		{"wrapped sentinel", fmt.Errorf("%w: model %q", ErrModelNotFound, "x"), 404, "invalid_request_error", "model_not_found", `model not found: model "x"`},
		{"too large", ErrBodyTooLarge, 413, "invalid_request_error", "request_too_large", "request body too large"},
		{"internal hides detail", errors.New("dial tcp 10.0.0.1: secret"), 500, "server_error", "internal_error", "internal error"},
		{"upstream keeps status", &UpstreamError{Status: 429, Type: "rate_limit_error", Code: "rate_limit_exceeded", Message: "slow down"}, 429, "rate_limit_error", "rate_limit_exceeded", "slow down"},
		{"budget", fmt.Errorf("%w: key budget of $10.00 per 1mo", ErrBudgetExceeded), 429, "rate_limit_error", "budget_exceeded", "budget exceeded: key budget of $10.00 per 1mo"},
		{"retry after wraps", &RetryAfterError{Err: ErrRateLimited}, 429, "rate_limit_error", "rate_limit_exceeded", "rate limit exceeded"},
		{"credential over upstream", &CredentialError{Backend: "vx", Err: &UpstreamError{Status: 401, Type: "authentication_error", Message: "token for sa@p.iam"}}, 503, "server_error", "credentials_unavailable", CredentialMessage},
		{"credential reason hidden", fmt.Errorf("signing: %w", &CredentialError{Backend: "br", Err: fmt.Errorf("%w: role arn:aws:iam::123:role/x", ErrInvalidRequest)}), 503, "server_error", "credentials_unavailable", CredentialMessage},
		{"provider auth is the gateway's", fmt.Errorf("%w (upstream status 401)", ErrProviderAuth), 502, "upstream_error", "provider_auth_failed", "the gateway's credential for this model's provider was rejected (upstream status 401)"},
		{"quotes escaped", fmt.Errorf("%w: \"\n\\", ErrInvalidRequest), 400, "invalid_request_error", "invalid_request", "invalid request: \"\n\\"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.err); got != tt.wantStatus {
				t.Errorf("Status = %d, want %d", got, tt.wantStatus)
			}
			var body struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(Body(tt.err), &body); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, Body(tt.err))
			}
			if body.Error.Message != tt.wantMsg || body.Error.Type != tt.wantType || body.Error.Code == nil || *body.Error.Code != tt.wantCode {
				t.Errorf("body = %+v code=%v, want %q %q %q", body.Error, body.Error.Code, tt.wantMsg, tt.wantType, tt.wantCode)
			}
		})
	}
}
