package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// Vertex imitates Google Cloud Vertex AI ({location}-aiplatform.googleapis.com)
// serving Gemini and Anthropic models, plus the OAuth2 token endpoint a
// service-account key names in token_uri.
const Vertex Kind = "vertex"

// Vertex AI wire formats, from Google's and Anthropic's documentation:
//   - Gemini models: POST /v1/projects/{project}/locations/{location}/
//     publishers/google/models/{model}:generateContent and
//     :streamGenerateContent?alt=sse, with the Gemini API's bodies and
//     streams (served by the Gemini fake's handlers):
//     https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference
//   - Anthropic models: .../publishers/anthropic/models/{model}:rawPredict
//     and :streamRawPredict, with Anthropic's Messages body without "model"
//     and with "anthropic_version": "vertex-2023-10-16"; replies and SSE
//     streams are Anthropic's (served by the Anthropic fake's handlers):
//     https://docs.claude.com/en/docs/build-with-claude/claude-on-vertex-ai
//   - embeddings: .../publishers/google/models/{model}:predict with
//     {"instances":[{"content"}],"parameters":{"outputDimensionality"}} →
//     {"predictions":[{"embeddings":{"values","statistics":{"token_count",
//     "truncated"}}}],"metadata":{"billableCharacterCount"}}:
//     https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
//   - auth: "Authorization: Bearer <OAuth2 access token>"; a missing or
//     wrong token is 401 UNAUTHENTICATED in Google's error format
//     ({"error":{"code","message","status"}}):
//     https://cloud.google.com/apis/design/errors
//   - token endpoint: POST /token with grant_type
//     urn:ietf:params:oauth:grant-type:jwt-bearer and an assertion answers
//     {"access_token","expires_in":3599,"token_type":"Bearer"}:
//     https://developers.google.com/identity/protocols/oauth2/service-account#httprest
//
// Differences from the real service: the JWT assertion's signature is not
// checked; Claude validation errors are the Anthropic fake's; Vertex sends
// no rate-limit headers, nor does the fake.

type vertexProvider struct{ geminiProvider }

// vertexTokens numbers the tokens /token hands out when no key is
// required.
var vertexTokens atomic.Int64

func (p vertexProvider) authorize(c *call, key string) bool {
	if c.r.URL.Path == "/token" {
		return true
	}
	tok, ok := strings.CutPrefix(c.r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || (key != "" && tok != key) {
		p.writeError(c, apiError{Status: 401, Type: "UNAUTHENTICATED",
			Message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."})
		return false
	}
	return true
}

// contextLength answers in the format of the publisher the path names:
// Anthropic's for Claude (rawPredict), Google's for Gemini.
func (p vertexProvider) contextLength(c *call) {
	if strings.Contains(c.r.URL.Path, "/publishers/anthropic/") {
		anthropicProvider{}.contextLength(c)
		return
	}
	p.geminiProvider.contextLength(c)
}

func (p vertexProvider) route(c *call) {
	path := c.r.URL.Path
	if path == "/token" {
		p.token(c)
		return
	}
	// /v1/projects/{p}/locations/{l}/publishers/{pub}/models/{model}:{method}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if c.r.Method != http.MethodPost || len(parts) != 9 || (parts[0] != "v1" && parts[0] != "v1beta1") ||
		parts[1] != "projects" || parts[3] != "locations" || parts[5] != "publishers" || parts[7] != "models" {
		p.writeError(c, apiError{Status: 404, Message: "The requested URL " + path + " was not found on this server."})
		return
	}
	pub, rest := parts[6], parts[8]
	model, method, ok := strings.Cut(rest, ":")
	if !ok || model == "" {
		p.writeError(c, apiError{Status: 404, Message: "The requested URL " + path + " was not found on this server."})
		return
	}
	switch {
	case pub == "google" && method == "generateContent":
		p.generate(c, model, false)
	case pub == "google" && method == "streamGenerateContent":
		p.generate(c, model, true)
	case pub == "google" && method == "predict":
		p.predict(c)
	case pub == "anthropic" && (method == "rawPredict" || method == "streamRawPredict"):
		p.rawPredict(c, model, method == "streamRawPredict")
	default:
		p.writeError(c, apiError{Status: 404, Message: fmt.Sprintf("Method %s is not served for publisher %s.", method, pub)})
	}
}

// token answers the service-account JWT bearer grant.
func (p vertexProvider) token(c *call) {
	if c.r.Method != http.MethodPost {
		c.writeJSON(http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request"})
		return
	}
	form, err := url.ParseQuery(string(c.body)) // ServeHTTP has read the body
	if err != nil {
		c.writeJSON(http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": err.Error()})
		return
	}
	if g := form.Get("grant_type"); g != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		c.writeJSON(http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "Invalid grant_type: " + g})
		return
	}
	if strings.Count(form.Get("assertion"), ".") != 2 {
		c.writeJSON(http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "Invalid JWT: assertion is not a JWT"})
		return
	}
	c.s.mu.Lock()
	tok := c.s.key
	c.s.mu.Unlock()
	if tok == "" {
		tok = fmt.Sprintf("ya29.fake-vertex-%d", vertexTokens.Add(1))
	}
	c.writeJSON(http.StatusOK, map[string]any{"access_token": tok, "expires_in": 3599, "token_type": "Bearer"})
}

// rawPredict checks the Vertex specifics of the Messages body, then lets
// the Anthropic fake answer with the path's model.
func (p vertexProvider) rawPredict(c *call, model string, stream bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(c.body, &m) != nil || m == nil {
		p.badRequest(c, "Invalid JSON payload received.")
		return
	}
	if _, ok := m["model"]; ok {
		p.badRequest(c, "model: Extra inputs are not permitted (the model is in the URL)")
		return
	}
	if v, _ := jsonString(m["anthropic_version"]); v != "vertex-2023-10-16" {
		p.badRequest(c, `anthropic_version: must be "vertex-2023-10-16"`)
		return
	}
	delete(m, "anthropic_version")
	m["model"], _ = json.Marshal(model)
	if stream {
		m["stream"] = json.RawMessage("true")
	}
	c.body, _ = json.Marshal(m)
	anthropicProvider{}.messages(c, false)
}

// predict answers text-embedding instances.
func (p vertexProvider) predict(c *call) {
	var req struct {
		Instances []struct {
			Content  *string `json:"content"`
			TaskType string  `json:"task_type"`
			Title    string  `json:"title"`
		} `json:"instances"`
		Parameters struct {
			OutputDimensionality *int  `json:"outputDimensionality"`
			AutoTruncate         *bool `json:"autoTruncate"`
		} `json:"parameters"`
	}
	if !p.decode(c, &req) {
		return
	}
	if len(req.Instances) == 0 {
		p.badRequest(c, "instances must not be empty.")
		return
	}
	dims := embeddingDims
	if d := req.Parameters.OutputDimensionality; d != nil {
		if *d < 1 || *d > 3072 {
			p.badRequest(c, "outputDimensionality must be between 1 and 3072.")
			return
		}
		dims = *d
	}
	preds := make([]any, len(req.Instances))
	chars := 0
	for i, in := range req.Instances {
		if in.Content == nil {
			p.badRequest(c, fmt.Sprintf("instances[%d].content is required.", i))
			return
		}
		chars += len(*in.Content)
		preds[i] = map[string]any{"embeddings": map[string]any{
			"values":     Embedding(*in.Content, dims),
			"statistics": map[string]any{"token_count": words(*in.Content), "truncated": false},
		}}
	}
	c.writeJSON(http.StatusOK, map[string]any{"predictions": preds, "metadata": map[string]any{"billableCharacterCount": chars}})
}
