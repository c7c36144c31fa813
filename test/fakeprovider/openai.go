package fakeprovider

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// OpenAI wire formats, from the API reference:
//   - chat completion object and request:
//     https://platform.openai.com/docs/api-reference/chat/create
//     https://platform.openai.com/docs/api-reference/chat/object
//   - streaming chunks ("data: {chat.completion.chunk}" ... "data: [DONE]";
//     with stream_options.include_usage every chunk has "usage": null and a
//     last chunk has "choices": [] and the usage):
//     https://platform.openai.com/docs/api-reference/chat-streaming/streaming
//     https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options
//   - legacy completions: https://platform.openai.com/docs/api-reference/completions/create
//   - embeddings (base64 is little-endian float32):
//     https://platform.openai.com/docs/api-reference/embeddings/create
//   - models: https://platform.openai.com/docs/api-reference/models/list
//   - errors ({"error":{"message","type","param","code"}}):
//     https://platform.openai.com/docs/guides/error-codes
//   - headers (x-request-id, openai-processing-ms, openai-version,
//     openai-organization): https://platform.openai.com/docs/api-reference/debugging-requests
//     and x-ratelimit-*: https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers

type openaiProvider struct{}

const (
	oaLimitRequests = 10000
	oaLimitTokens   = 2000000
)

func (openaiProvider) commonHeaders(c *call, rateLimited bool) {
	h := c.w.Header()
	h.Set("x-request-id", c.id("req_fake"))
	h.Set("openai-processing-ms", "1")
	h.Set("openai-version", "2020-10-01")
	h.Set("openai-organization", "fake-org")
	h.Set("x-ratelimit-limit-requests", strconv.Itoa(oaLimitRequests))
	h.Set("x-ratelimit-limit-tokens", strconv.Itoa(oaLimitTokens))
	if rateLimited {
		h.Set("x-ratelimit-remaining-requests", "0")
		h.Set("x-ratelimit-remaining-tokens", "0")
		h.Set("x-ratelimit-reset-requests", "1s")
		h.Set("x-ratelimit-reset-tokens", "1s")
		h.Set("retry-after", "1")
		return
	}
	h.Set("x-ratelimit-remaining-requests", strconv.Itoa(oaLimitRequests-1))
	h.Set("x-ratelimit-remaining-tokens", strconv.Itoa(oaLimitTokens-1000))
	h.Set("x-ratelimit-reset-requests", "6ms")
	h.Set("x-ratelimit-reset-tokens", "30ms")
}

func (openaiProvider) defaultError(status int) apiError {
	e := apiError{Status: status}
	switch status {
	case 400:
		e.Type, e.Message = "invalid_request_error", "Bad request."
	case 401:
		e.Type, e.Message, e.Code = "invalid_request_error",
			"Incorrect API key provided: sk-fake. You can find your API key at https://platform.openai.com/account/api-keys.", strp("invalid_api_key")
	case 403:
		e.Type, e.Message, e.Code = "invalid_request_error", "Country, region, or territory not supported", strp("unsupported_country_region_territory")
	case 404:
		e.Type, e.Message, e.Code = "invalid_request_error", "The model `fake-model` does not exist or you do not have access to it.", strp("model_not_found")
	case 429:
		e.Type, e.Message, e.Code = "requests",
			"Rate limit reached for fake-model in organization fake-org on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in 1s.", strp("rate_limit_exceeded")
	case 500:
		e.Type, e.Message = "server_error", "The server had an error while processing your request. Sorry about that!"
	case 503:
		e.Type, e.Message = "service_unavailable_error", "The engine is currently overloaded, please try again later."
	default:
		if status < 500 {
			e.Type = "invalid_request_error"
		} else {
			e.Type = "server_error"
		}
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = fmt.Sprintf("Error %d", status)
		}
	}
	return e
}

// oaError is the OpenAI error body.
type oaError struct {
	Error oaErrorBody `json:"error"`
}

type oaErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (p openaiProvider) writeError(c *call, e apiError) {
	if e.Type == "" {
		e.Type = p.defaultError(e.Status).Type
	}
	p.commonHeaders(c, e.Status == http.StatusTooManyRequests)
	c.writeJSON(e.Status, oaError{Error: oaErrorBody{Message: e.Message, Type: e.Type, Param: e.Param, Code: e.Code}})
}

func (p openaiProvider) contextLength(c *call) {
	p.writeError(c, openaiContextLength)
}

// openaiContextLength is OpenAI's (and Azure OpenAI's) error for a prompt
// over the context window.
var openaiContextLength = apiError{Status: 400, Type: "invalid_request_error",
	Message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
	Param:   strp("messages"), Code: strp("context_length_exceeded")}

func (p openaiProvider) authorize(c *call, key string) bool {
	if key == "" {
		return true
	}
	auth := c.r.Header.Get("Authorization")
	if auth == "" {
		p.writeError(c, apiError{Status: 401, Type: "invalid_request_error",
			Message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys."})
		return false
	}
	got, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || got != key {
		shown := got
		if len(shown) > 8 {
			shown = shown[:3] + strings.Repeat("*", 4) + shown[len(shown)-4:]
		}
		p.writeError(c, apiError{Status: 401, Type: "invalid_request_error", Code: strp("invalid_api_key"),
			Message: "Incorrect API key provided: " + shown + ". You can find your API key at https://platform.openai.com/account/api-keys."})
		return false
	}
	return true
}

func (p openaiProvider) route(c *call) {
	switch {
	case c.r.Method == http.MethodPost && c.r.URL.Path == "/v1/chat/completions":
		p.chat(c)
	case c.r.Method == http.MethodPost && c.r.URL.Path == "/v1/completions":
		p.completions(c)
	case c.r.Method == http.MethodPost && c.r.URL.Path == "/v1/embeddings":
		p.embeddings(c)
	case c.r.Method == http.MethodPost && c.r.URL.Path == "/v1/responses":
		p.responses(c)
	case c.r.Method == http.MethodGet && c.r.URL.Path == "/v1/models":
		p.models(c)
	default:
		p.writeError(c, apiError{Status: 404, Type: "invalid_request_error",
			Message: fmt.Sprintf("Invalid URL (%s %s)", c.r.Method, c.r.URL.Path)})
	}
}

func (p openaiProvider) badRequest(c *call, msg string, param, code string) {
	e := apiError{Status: 400, Type: "invalid_request_error", Message: msg}
	if param != "" {
		e.Param = strp(param)
	}
	if code != "" {
		e.Code = strp(code)
	}
	p.writeError(c, e)
}

// decode parses the body into v, answering 400 and returning false on failure.
func (p openaiProvider) decode(c *call, v any) bool {
	t := bytes.TrimSpace(c.body)
	if !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		p.badRequest(c, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "", "")
		return false
	}
	if err := json.Unmarshal(t, v); err != nil {
		param := ""
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			param = ute.Field
		}
		p.badRequest(c, "Invalid type for request parameter: "+err.Error(), param, "invalid_type")
		return false
	}
	return true
}

// ---- chat completions ----

type oaChatRequest struct {
	Model         *string         `json:"model"`
	Messages      json.RawMessage `json:"messages"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Tools               []oaTool        `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

type oaTool struct {
	Type     string `json:"type"`
	Function struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type oaMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []oaToolCall    `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type oaToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// oaContentText returns the text of an OpenAI content value: a string, or
// the "text" of text parts (joined by a space), or "" for null.
func oaContentText(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	if s, ok := jsonString(raw); ok {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or an array of content parts")
	}
	var texts []string
	for _, pt := range parts {
		if pt.Type == "text" {
			texts = append(texts, pt.Text)
		}
	}
	return strings.Join(texts, " "), nil
}

type usageInfo struct {
	prompt, completion, cached int
}

type oaUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func (u usageInfo) openai() *oaUsage {
	out := &oaUsage{PromptTokens: u.prompt, CompletionTokens: u.completion, TotalTokens: u.prompt + u.completion}
	out.PromptTokensDetails.CachedTokens = u.cached
	return out
}

func (p openaiProvider) chat(c *call) {
	var req oaChatRequest
	if !p.decode(c, &req) {
		return
	}
	if req.Model == nil || *req.Model == "" {
		p.badRequest(c, "you must provide a model parameter", "", "")
		return
	}
	if isNull(req.Messages) {
		p.badRequest(c, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
		return
	}
	var msgs []oaMessage
	if err := json.Unmarshal(req.Messages, &msgs); err != nil {
		p.badRequest(c, "Invalid type for 'messages': expected an array of message objects.", "messages", "invalid_type")
		return
	}
	if len(msgs) == 0 {
		p.badRequest(c, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "messages", "empty_array")
		return
	}

	// Validate roles and tool-call pairing; count prompt tokens.
	prompt := 0
	var pending map[string]bool // tool_call_ids awaiting a tool message
	var pendingOrder []string
	lastUserText, lastToolText := "", ""
	lastIsTool := false
	for i, m := range msgs {
		text, err := oaContentText(m.Content)
		if err != nil {
			p.badRequest(c, fmt.Sprintf("Invalid 'messages[%d].content': %v.", i, err), fmt.Sprintf("messages.[%d].content", i), "invalid_type")
			return
		}
		if m.Role != "tool" && len(pending) > 0 {
			p.badRequest(c, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: "+strings.Join(missingIDs(pendingOrder, pending), ", "), fmt.Sprintf("messages.[%d].role", i), "")
			return
		}
		switch m.Role {
		case "system", "developer", "user", "function":
		case "assistant":
			pending, pendingOrder = nil, nil
			for _, tc := range m.ToolCalls {
				if pending == nil {
					pending = map[string]bool{}
				}
				pending[tc.ID] = true
				pendingOrder = append(pendingOrder, tc.ID)
				text += " " + tc.Function.Name + " " + tc.Function.Arguments
			}
		case "tool":
			if m.ToolCallID == "" {
				p.badRequest(c, fmt.Sprintf("Missing parameter 'tool_call_id': messages with role 'tool' must have a 'tool_call_id'."), fmt.Sprintf("messages.[%d].tool_call_id", i), "")
				return
			}
			if !pending[m.ToolCallID] {
				p.badRequest(c, "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.", fmt.Sprintf("messages.[%d].role", i), "")
				return
			}
			delete(pending, m.ToolCallID)
		default:
			p.badRequest(c, fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.", m.Role), fmt.Sprintf("messages[%d].role", i), "invalid_value")
			return
		}
		prompt += 3 + words(text)
		lastIsTool = m.Role == "tool"
		if m.Role == "user" {
			lastUserText = text
		}
		if lastIsTool {
			lastToolText = text
		}
	}
	if len(pending) > 0 {
		p.badRequest(c, "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: "+strings.Join(missingIDs(pendingOrder, pending), ", "), "messages", "")
		return
	}

	// Tool choice.
	var tool *oaTool
	if len(req.Tools) > 0 && !lastIsTool {
		tool = &req.Tools[0]
		if s, ok := jsonString(req.ToolChoice); ok {
			switch s {
			case "none":
				tool = nil
			case "auto", "required":
			default:
				p.badRequest(c, fmt.Sprintf("Invalid value: '%s'. Supported values are: 'none', 'auto', and 'required'.", s), "tool_choice", "invalid_value")
				return
			}
		} else if !isNull(req.ToolChoice) {
			var tc struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			_ = json.Unmarshal(req.ToolChoice, &tc)
			tool = nil
			for i := range req.Tools {
				if req.Tools[i].Function.Name == tc.Function.Name {
					tool = &req.Tools[i]
				}
			}
			if tool == nil {
				p.badRequest(c, fmt.Sprintf("Invalid value for 'tool_choice': no function named '%s' was specified in the 'tools' parameter.", tc.Function.Name), "tool_choice", "")
				return
			}
		}
	}

	maxTokens := 0
	if req.MaxCompletionTokens != nil {
		maxTokens = *req.MaxCompletionTokens
	} else if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	}
	if c.beh.exactUsage && maxTokens <= 0 {
		p.badRequest(c, "fake: exact-usage needs max_tokens or max_completion_tokens", "", "")
		return
	}

	u := usageInfo{prompt: prompt, cached: c.beh.cached}
	if u.cached > u.prompt {
		u.prompt = u.cached
	}
	var text, args, finish string
	if tool != nil {
		args = schemaArgs(tool.Function.Parameters)
		u.completion = toolCallTokens(args)
		finish = "tool_calls"
	} else {
		if lastIsTool {
			text = toolResultReply(c.pname, lastToolText)
		} else {
			text = echoReply(c.pname, lastUserText)
		}
		var cut bool
		text, cut = shapeText(text, maxTokens, c.beh.exactUsage)
		u.completion = words(text)
		finish = "stop"
		if cut {
			finish = "length"
		}
	}
	if c.beh.exactUsage {
		u.completion = maxTokens
	}

	id := c.id("chatcmpl-fake")
	created := c.now.Unix()
	model := *req.Model
	var callID string
	if tool != nil {
		callID = c.id("call_fake")
	}

	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": nil, "refusal": nil, "annotations": []any{}}
		if tool != nil {
			tc := oaToolCall{ID: callID, Type: "function"}
			tc.Function.Name, tc.Function.Arguments = tool.Function.Name, args
			msg["tool_calls"] = []oaToolCall{tc}
		} else {
			msg["content"] = text
		}
		c.writeJSON(http.StatusOK, map[string]any{
			"id":      id,
			"object":  "chat.completion",
			"created": created,
			"model":   model,
			"choices": []any{map[string]any{
				"index":         0,
				"message":       msg,
				"logprobs":      nil,
				"finish_reason": finish,
			}},
			"usage":              u.openai(),
			"service_tier":       "default",
			"system_fingerprint": "fp_fake",
		})
		return
	}

	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	sw := c.startSSE("text/event-stream; charset=utf-8")
	chunk := func(delta map[string]any, finish any) map[string]any {
		ch := map[string]any{
			"id":                 id,
			"object":             "chat.completion.chunk",
			"created":            created,
			"model":              model,
			"service_tier":       "default",
			"system_fingerprint": "fp_fake",
			"choices": []any{map[string]any{
				"index":         0,
				"delta":         delta,
				"logprobs":      nil,
				"finish_reason": finish,
			}},
		}
		if includeUsage {
			ch["usage"] = nil
		}
		return ch
	}
	streamErr := func() {
		sw.event("", oaError{Error: oaErrorBody{Message: "The server had an error while processing your request. Sorry about that!", Type: "server_error"}})
	}
	if tool != nil {
		idx := 0
		first := map[string]any{"index": idx, "id": callID, "type": "function",
			"function": map[string]any{"name": tool.Function.Name, "arguments": ""}}
		sw.event("", chunk(map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{first}, "refusal": nil}, nil))
		for i, piece := range splitPieces(args) {
			sw.event("", chunk(map[string]any{"tool_calls": []any{map[string]any{"index": idx, "function": map[string]any{"arguments": piece}}}}, nil))
			if i == 0 && c.beh.streamError {
				streamErr()
				return
			}
		}
	} else {
		sw.event("", chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
		for i, piece := range wordChunks(text) {
			sw.event("", chunk(map[string]any{"content": piece}, nil))
			if i == 0 && c.beh.streamError {
				streamErr()
				return
			}
		}
	}
	sw.event("", chunk(map[string]any{}, finish))
	if includeUsage {
		sw.event("", map[string]any{
			"id":                 id,
			"object":             "chat.completion.chunk",
			"created":            created,
			"model":              model,
			"service_tier":       "default",
			"system_fingerprint": "fp_fake",
			"choices":            []any{},
			"usage":              u.openai(),
		})
	}
	sw.event("", "[DONE]")
}

func missingIDs(order []string, pending map[string]bool) []string {
	var out []string
	for _, id := range order {
		if pending[id] {
			out = append(out, id)
		}
	}
	return out
}

// ---- legacy completions ----

func (p openaiProvider) completions(c *call) {
	var req struct {
		Model         *string         `json:"model"`
		Prompt        json.RawMessage `json:"prompt"`
		Stream        bool            `json:"stream"`
		MaxTokens     *int            `json:"max_tokens"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if !p.decode(c, &req) {
		return
	}
	if req.Model == nil || *req.Model == "" {
		p.badRequest(c, "you must provide a model parameter", "", "")
		return
	}
	var prompts []string
	if s, ok := jsonString(req.Prompt); ok {
		prompts = []string{s}
	} else if isNull(req.Prompt) {
		prompts = []string{""} // OpenAI defaults prompt to <|endoftext|>
	} else if err := json.Unmarshal(req.Prompt, &prompts); err != nil || len(prompts) == 0 {
		p.badRequest(c, "Invalid type for 'prompt': expected a string or an array of strings.", "prompt", "invalid_type")
		return
	}
	maxTokens := 0
	if req.MaxTokens != nil {
		maxTokens = *req.MaxTokens
	}
	if c.beh.exactUsage && maxTokens <= 0 {
		p.badRequest(c, "fake: exact-usage needs max_tokens", "", "")
		return
	}
	u := usageInfo{}
	texts := make([]string, len(prompts))
	finishes := make([]string, len(prompts))
	for i, pr := range prompts {
		u.prompt += words(pr)
		t, cut := shapeText(echoReply(c.pname, pr), maxTokens, c.beh.exactUsage)
		texts[i], finishes[i] = t, "stop"
		if cut {
			finishes[i] = "length"
		}
		u.completion += words(t)
	}
	if c.beh.exactUsage {
		u.completion = maxTokens * len(prompts)
	}
	id := c.id("cmpl-fake")
	created := c.now.Unix()
	usage := map[string]any{"prompt_tokens": u.prompt, "completion_tokens": u.completion, "total_tokens": u.prompt + u.completion}
	if !req.Stream {
		choices := make([]any, len(texts))
		for i, t := range texts {
			choices[i] = map[string]any{"text": t, "index": i, "logprobs": nil, "finish_reason": finishes[i]}
		}
		c.writeJSON(http.StatusOK, map[string]any{
			"id": id, "object": "text_completion", "created": created, "model": *req.Model,
			"choices": choices, "usage": usage, "system_fingerprint": "fp_fake",
		})
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	sw := c.startSSE("text/event-stream; charset=utf-8")
	chunk := func(i int, text string, finish any) map[string]any {
		ch := map[string]any{
			"id": id, "object": "text_completion", "created": created, "model": *req.Model,
			"choices":            []any{map[string]any{"text": text, "index": i, "logprobs": nil, "finish_reason": finish}},
			"system_fingerprint": "fp_fake",
		}
		if includeUsage {
			ch["usage"] = nil
		}
		return ch
	}
	for i, t := range texts {
		for j, piece := range wordChunks(t) {
			sw.event("", chunk(i, piece, nil))
			if j == 0 && c.beh.streamError {
				sw.event("", oaError{Error: oaErrorBody{Message: "The server had an error while processing your request. Sorry about that!", Type: "server_error"}})
				return
			}
		}
		sw.event("", chunk(i, "", finishes[i]))
	}
	if includeUsage {
		sw.event("", map[string]any{
			"id": id, "object": "text_completion", "created": created, "model": *req.Model,
			"choices": []any{}, "usage": usage, "system_fingerprint": "fp_fake",
		})
	}
	sw.event("", "[DONE]")
}

// ---- embeddings ----

// embeddingDims is the default vector length of the fake embeddings.
const embeddingDims = 8

// Embedding returns the fake's deterministic embedding of text: dims float32
// values derived from SHA-256 of the text, normalised to unit length like
// OpenAI's embeddings. Tests can use it to compute expected vectors.
func Embedding(text string, dims int) []float32 {
	raw := make([]float64, dims)
	var norm float64
	for i := 0; i < dims; i++ {
		block := sha256.Sum256([]byte(fmt.Sprintf("%d:%s", i/8, text)))
		v := binary.BigEndian.Uint32(block[(i%8)*4:])
		raw[i] = float64(v)/float64(math.MaxUint32)*2 - 1
		norm += raw[i] * raw[i]
	}
	norm = math.Sqrt(norm)
	out := make([]float32, dims)
	for i, v := range raw {
		if norm > 0 {
			v /= norm
		}
		out[i] = float32(v)
	}
	return out
}

func (p openaiProvider) embeddings(c *call) {
	var req struct {
		Model          *string         `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
		Dimensions     *int            `json:"dimensions"`
	}
	if !p.decode(c, &req) {
		return
	}
	if req.Model == nil || *req.Model == "" {
		p.badRequest(c, "you must provide a model parameter", "", "")
		return
	}
	if isNull(req.Input) {
		p.badRequest(c, "Missing required parameter: 'input'.", "input", "missing_required_parameter")
		return
	}
	var inputs []string
	if s, ok := jsonString(req.Input); ok {
		inputs = []string{s}
	} else if err := json.Unmarshal(req.Input, &inputs); err != nil {
		p.badRequest(c, "Invalid type for 'input': expected a string or an array of strings.", "input", "invalid_type")
		return
	}
	if len(inputs) == 0 {
		p.badRequest(c, "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.", "input", "empty_array")
		return
	}
	for i, in := range inputs {
		if in == "" {
			p.badRequest(c, fmt.Sprintf("Invalid 'input[%d]': empty string. Expected a string with minimum length 1, but got an empty string instead.", i), "input", "empty_string")
			return
		}
	}
	dims := embeddingDims
	if req.Dimensions != nil {
		if *req.Dimensions < 1 || *req.Dimensions > 4096 {
			p.badRequest(c, fmt.Sprintf("Invalid 'dimensions': integer below minimum value or above maximum value (got %d).", *req.Dimensions), "dimensions", "invalid_value")
			return
		}
		dims = *req.Dimensions
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		p.badRequest(c, fmt.Sprintf("Invalid value: '%s'. Supported values are: 'float' and 'base64'.", req.EncodingFormat), "encoding_format", "invalid_value")
		return
	}
	prompt := 0
	data := make([]any, len(inputs))
	for i, in := range inputs {
		prompt += words(in)
		vec := Embedding(in, dims)
		var emb any = vec
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(vec))
			for j, f := range vec {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	c.writeJSON(http.StatusOK, map[string]any{
		"object": "list",
		"data":   data,
		"model":  *req.Model,
		"usage":  map[string]any{"prompt_tokens": prompt, "total_tokens": prompt},
	})
}

// ---- models ----

// openaiModels are the model ids listed by GET /v1/models.
var openaiModels = []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "gpt-3.5-turbo-instruct"}

func (openaiProvider) models(c *call) {
	data := make([]any, len(openaiModels))
	for i, m := range openaiModels {
		data[i] = map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"}
	}
	c.writeJSON(http.StatusOK, map[string]any{"object": "list", "data": data})
}
