package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Azure imitates Azure OpenAI (https://<resource>.openai.azure.com).
const Azure Kind = "azure"

// Azure OpenAI wire formats, from Microsoft's documentation:
//   - paths /openai/deployments/{deployment}/{chat/completions,completions,
//     embeddings}?api-version=..., and the api-key header:
//     https://learn.microsoft.com/en-us/azure/ai-foundry/openai/reference
//   - the v1 API (/openai/v1/..., model in the body names the deployment):
//     https://learn.microsoft.com/en-us/azure/ai-foundry/openai/api-version-lifecycle
//   - bodies and streams are OpenAI's (see openai.go), so the fake serves
//     them with the OpenAI fake's handlers, the deployment standing in for
//     the model;
//   - content filter errors (400, {"error":{"message","type":null,
//     "param":"prompt","code":"content_filter","status":400,"innererror":
//     {"code":"ResponsibleAIPolicyViolation","content_filter_result":{...}}}}):
//     https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter
//   - other errors ({"error":{"code":"401"|"429"|"DeploymentNotFound",
//     "message"}}) and the x-ratelimit-remaining-* / apim-request-id
//     headers: https://learn.microsoft.com/en-us/azure/ai-foundry/openai/quotas-limits
//
// Auth is the api-key header or "Authorization: Bearer <token>" (Entra ID:
// https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/managed-identity).
//
// Behaviours are those of the OpenAI fake, except that status=400 answers
// with the content filter error, the 400 an Azure client most needs to
// handle. Differences from the real service: streams carry no
// prompt_filter_results chunk and no content_filter_results, and request
// validation errors have the OpenAI fake's shape and headers.

type azureProvider struct{}

func (azureProvider) commonHeaders(c *call, rateLimited bool) {
	h := c.w.Header()
	h.Set("apim-request-id", c.id("00000000-0000-0000-0000-fake"))
	h.Set("x-request-id", c.id("req_fake"))
	h.Set("x-ms-region", "East US")
	h.Set("x-ratelimit-limit-requests", strconv.Itoa(oaLimitRequests))
	h.Set("x-ratelimit-limit-tokens", strconv.Itoa(oaLimitTokens))
	if rateLimited {
		h.Set("x-ratelimit-remaining-requests", "0")
		h.Set("x-ratelimit-remaining-tokens", "0")
		h.Set("retry-after", "1")
		h.Set("retry-after-ms", "1000")
		return
	}
	h.Set("x-ratelimit-remaining-requests", strconv.Itoa(oaLimitRequests-1))
	h.Set("x-ratelimit-remaining-tokens", strconv.Itoa(oaLimitTokens-1000))
}

func (azureProvider) defaultError(status int) apiError {
	e := apiError{Status: status, Code: strp(strconv.Itoa(status))}
	switch status {
	case 400:
		e.Type = "content_filter"
		e.Message = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
	case 401:
		e.Message = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
	case 404:
		e.Code = strp("DeploymentNotFound")
		e.Message = "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."
	case 429:
		e.Message = "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 1 second."
	case 500:
		e.Code = strp("InternalServerError")
		e.Message = "The server had an error while processing your request. Sorry about that!"
	default:
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = fmt.Sprintf("Error %d", status)
		}
	}
	return e
}

func (p azureProvider) writeError(c *call, e apiError) {
	p.commonHeaders(c, e.Status == http.StatusTooManyRequests)
	if e.Type == "content_filter" {
		c.writeJSON(e.Status, map[string]any{"error": map[string]any{
			"message": e.Message, "type": nil, "param": "prompt", "code": "content_filter", "status": 400,
			"innererror": map[string]any{"code": "ResponsibleAIPolicyViolation", "content_filter_result": map[string]any{
				"hate":      map[string]any{"filtered": false, "severity": "safe"},
				"jailbreak": map[string]any{"filtered": false, "detected": false},
				"self_harm": map[string]any{"filtered": false, "severity": "safe"},
				"sexual":    map[string]any{"filtered": false, "severity": "safe"},
				"violence":  map[string]any{"filtered": true, "severity": "high"},
			}},
		}})
		return
	}
	code := strconv.Itoa(e.Status)
	if e.Code != nil {
		code = *e.Code
	}
	c.writeJSON(e.Status, map[string]any{"error": map[string]any{"code": code, "message": e.Message}})
}

func (p azureProvider) contextLength(c *call) { p.writeError(c, openaiContextLength) }

func (p azureProvider) authorize(c *call, key string) bool {
	// api-key, or a Microsoft Entra ID bearer token (the fake takes the
	// required key as the token).
	if key == "" || c.r.Header.Get("api-key") == key || c.r.Header.Get("Authorization") == "Bearer "+key {
		return true
	}
	p.writeError(c, p.defaultError(401))
	return false
}

func (p azureProvider) route(c *call) {
	path := c.r.URL.Path
	var deployment, op string
	if rest, ok := strings.CutPrefix(path, "/openai/v1/"); ok {
		op = rest
	} else if path == "/openai/responses" {
		// Responses is not per deployment; the body's model names it.
		if c.r.URL.Query().Get("api-version") == "" {
			p.writeError(c, apiError{Status: 404, Code: strp("404"), Message: "Resource not found"})
			return
		}
		op = "responses"
	} else if rest, ok := strings.CutPrefix(path, "/openai/deployments/"); ok {
		deployment, op, _ = strings.Cut(rest, "/")
		if c.r.URL.Query().Get("api-version") == "" {
			p.writeError(c, apiError{Status: 404, Code: strp("404"), Message: "Resource not found"})
			return
		}
		if deployment == "" {
			p.writeError(c, p.defaultError(404))
			return
		}
	} else {
		p.writeError(c, apiError{Status: 404, Code: strp("404"), Message: "Resource not found"})
		return
	}
	if c.r.Method != http.MethodPost {
		p.writeError(c, apiError{Status: 405, Message: "Method not allowed"})
		return
	}
	if deployment != "" {
		c.body = withModel(c.body, deployment)
	}
	oa := openaiProvider{}
	switch op {
	case "chat/completions":
		oa.chat(c)
	case "completions":
		oa.completions(c)
	case "embeddings":
		oa.embeddings(c)
	case "responses":
		oa.responses(c)
	default:
		p.writeError(c, apiError{Status: 404, Code: strp("404"), Message: "Resource not found"})
	}
}

// withModel sets "model" to the deployment: Azure ignores the body's model
// on deployment paths, and the OpenAI handlers want one.
func withModel(body []byte, deployment string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		return body // let the handler report the bad body
	}
	b, _ := json.Marshal(deployment)
	m["model"] = b
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}
