package errs

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// TestRedactMessage: provider error messages as the providers write them
// lose the account details and keep the rest.
func TestRedactMessage(t *testing.T) {
	tests := []struct {
		name, in string
		gone     []string // must not survive
		kept     []string // must survive
	}{
		{"openai key", "Incorrect API key provided: sk-proj-********************************************abcd. You can find your API key at https://platform.openai.com/account/api-keys.",
			[]string{"sk-proj", "abcd"}, []string{"Incorrect API key provided: [redacted]."}},
		{"openai legacy masked key", "Incorrect API key provided: sk-abc12...wxyz.", []string{"sk-abc12", "wxyz"}, []string{"provided: [redacted]."}},
		{"fake key", "Incorrect API key provided: sk-fake. You can find your API key", []string{"sk-fake"}, []string{"[redacted]. You can"}},
		{"openai org rate limit", "Rate limit reached for gpt-4o-mini in organization org-AbC123xyz on tokens per min (TPM): Limit 200000, Used 199000, Requested 2000.",
			[]string{"org-AbC123xyz"}, []string{"Rate limit reached for gpt-4o-mini in organization [redacted] on tokens per min (TPM): Limit 200000"}},
		{"org by name", "Rate limit reached for fake-model in organization fake-org on requests per min (RPM)", []string{"fake-org"}, []string{"in organization [redacted] on requests"}},
		{"openai project", "You exceeded your current quota for project proj_9xYzAbC.", []string{"proj_9xYzAbC"}, []string{"You exceeded your current quota"}},
		{"anthropic org uuid", "This request would exceed the rate limit for your organization (c0b34a1e-6f1a-4a2b-9c3d-0123456789ab) of 50 requests per minute.",
			[]string{"c0b34a1e"}, []string{"of 50 requests per minute"}},
		{"azure resource", "Resource not found at https://contoso-eastus.openai.azure.com/openai/deployments/gpt4", []string{"contoso-eastus"}, []string{"[redacted].openai.azure.com/openai/deployments/gpt4"}},
		{"aws arn", "User: arn:aws:iam::123456789012:user/weir is not authorized to perform: bedrock:InvokeModel", []string{"123456789012", "user/weir"}, []string{"is not authorized to perform: bedrock:InvokeModel"}},
		{"aws key id", "The security token included in the request is invalid: AKIAIOSFODNN7EXAMPLE", []string{"AKIAIOSFODNN7EXAMPLE"}, []string{"The security token"}},
		{"vertex resource", "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/acme-prod-42/locations/us-central1/publishers/google/models/gemini-2.5-flash'",
			[]string{"acme-prod-42"}, []string{"projects/[redacted]/locations/us-central1"}},
		{"gemini project number", "Generative Language API has not been used in project 123456789012 before or it is disabled.", []string{"123456789012"}, []string{"in project [redacted] before"}},
		{"quota consumer", "Quota exceeded for quota metric 'Generate Content requests' for consumer 'project_number:98765432'.", []string{"98765432"}, []string{"project_number:[redacted]"}},
		{"google api key", "API key not valid: AIzaSyA-1234567890abcdefghijklmnopqrstu", []string{"AIzaSyA"}, []string{"API key not valid"}},
		{"nothing to redact", "Invalid request: messages[0].content is required", nil, []string{"Invalid request: messages[0].content is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactMessage(tt.in)
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("%q survived in %q", g, got)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(got, k) {
					t.Errorf("%q missing from %q", k, got)
				}
			}
		})
	}
}

// TestRedactUpstream: a provider error body crosses as message (redacted),
// type, param and code, and nothing else; non-JSON is wrapped.
func TestRedactUpstream(t *testing.T) {
	tests := []struct {
		name   string
		status int
		in     string
		want   string
	}{
		{"openai error", 429, `{"error":{"message":"Rate limit reached in organization org-abc on tokens","type":"tokens","param":null,"code":"rate_limit_exceeded","org":"org-abc"},"request_id":"req_1"}`,
			`{"error":{"message":"Rate limit reached in organization [redacted] on tokens","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`},
		{"param and numeric code", 400, `{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":400}}`,
			`{"error":{"message":"bad","type":"invalid_request_error","param":"messages","code":"400"}}`},
		{"html", 502, `<html>bad gateway at contoso.openai.azure.com</html>`,
			`{"error":{"message":"<html>bad gateway at [redacted].openai.azure.com</html>","type":"server_error","param":null,"code":null}}`},
		{"no type", 500, `{"error":{"message":"boom"}}`, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactUpstream(tt.status, []byte(tt.in))
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !gjson.ValidBytes(got) {
				t.Error("invalid JSON")
			}
		})
	}
}
