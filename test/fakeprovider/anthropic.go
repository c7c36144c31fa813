package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Anthropic wire formats, from Anthropic's documentation:
//   - Messages request/response: https://docs.anthropic.com/en/api/messages
//   - streaming (event: message_start / content_block_start / ping /
//     content_block_delta with text_delta or input_json_delta /
//     content_block_stop / message_delta / message_stop, and event: error):
//     https://platform.claude.com/docs/en/build-with-claude/streaming
//   - tool use (tool_use blocks, stop_reason "tool_use", tool_result):
//     https://platform.claude.com/docs/en/agents-and-tools/tool-use/overview
//   - errors ({"type":"error","error":{"type","message"},"request_id"} and
//     the status → type table 400/401/403/404/413/429/500/529) and the
//     request-id header: https://docs.claude.com/en/api/errors
//   - rate-limit headers (anthropic-ratelimit-*, retry-after on 429):
//     https://docs.anthropic.com/en/api/rate-limits#response-headers
//   - anthropic-version header: https://docs.anthropic.com/en/api/versioning
//   - token counting: https://docs.anthropic.com/en/api/messages-count-tokens
//   - models: https://docs.anthropic.com/en/api/models-list

type anthropicProvider struct{}

var anLimits = []struct {
	name  string
	limit int
	used  int
}{
	{"requests", 4000, 1},
	{"tokens", 400000, 1000},
	{"input-tokens", 200000, 1000},
	{"output-tokens", 80000, 0},
}

func (anthropicProvider) commonHeaders(c *call, rateLimited bool) {
	h := c.w.Header()
	h.Set("request-id", c.id("req_fake"))
	h.Set("anthropic-organization-id", "00000000-0000-0000-0000-00000000fa4e")
	reset := c.now.Add(time.Minute).UTC().Format(time.RFC3339)
	if rateLimited {
		reset = c.now.Add(time.Second).UTC().Format(time.RFC3339)
	}
	for _, l := range anLimits {
		remaining := l.limit - l.used
		if rateLimited && l.name == "requests" {
			remaining = 0
		}
		h.Set("anthropic-ratelimit-"+l.name+"-limit", strconv.Itoa(l.limit))
		h.Set("anthropic-ratelimit-"+l.name+"-remaining", strconv.Itoa(remaining))
		h.Set("anthropic-ratelimit-"+l.name+"-reset", reset)
	}
	if rateLimited {
		h.Set("retry-after", "1")
	}
}

func (anthropicProvider) defaultError(status int) apiError {
	e := apiError{Status: status}
	switch status {
	case 400:
		e.Type, e.Message = "invalid_request_error", "Invalid request"
	case 401:
		e.Type, e.Message = "authentication_error", "invalid x-api-key"
	case 402:
		e.Type, e.Message = "billing_error", "Your credit balance is too low to access the Anthropic API."
	case 403:
		e.Type, e.Message = "permission_error", "Your API key does not have permission to use the specified resource."
	case 404:
		e.Type, e.Message = "not_found_error", "Not found"
	case 413:
		e.Type, e.Message = "request_too_large", "Request exceeds the maximum allowed number of bytes."
	case 429:
		e.Type, e.Message = "rate_limit_error", "Number of requests has exceeded your per-minute rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response headers for current usage. Please try again later."
	case 500:
		e.Type, e.Message = "api_error", "Internal server error"
	case 504:
		e.Type, e.Message = "timeout_error", "Request timeout"
	case 529:
		e.Type, e.Message = "overloaded_error", "Overloaded"
	default:
		if status < 500 {
			e.Type = "invalid_request_error"
		} else {
			e.Type = "api_error"
		}
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = fmt.Sprintf("Error %d", status)
		}
	}
	return e
}

type anErrorBody struct {
	Type      string      `json:"type"`
	Error     anErrorInfo `json:"error"`
	RequestID string      `json:"request_id,omitempty"`
}

type anErrorInfo struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func (p anthropicProvider) writeError(c *call, e apiError) {
	if e.Type == "" {
		e.Type = p.defaultError(e.Status).Type
	}
	p.commonHeaders(c, e.Status == http.StatusTooManyRequests)
	c.writeJSON(e.Status, anErrorBody{Type: "error", Error: anErrorInfo{Type: e.Type, Message: e.Message}, RequestID: c.id("req_fake")})
}

func (p anthropicProvider) contextLength(c *call) {
	p.writeError(c, apiError{Status: 400, Type: "invalid_request_error", Message: "prompt is too long: 208310 tokens > 200000 maximum"})
}

func (p anthropicProvider) authorize(c *call, key string) bool {
	if key == "" {
		return true
	}
	got := c.r.Header.Get("x-api-key")
	switch {
	case got == "":
		p.writeError(c, apiError{Status: 401, Type: "authentication_error", Message: "x-api-key header is required"})
		return false
	case got != key:
		p.writeError(c, apiError{Status: 401, Type: "authentication_error", Message: "invalid x-api-key"})
		return false
	}
	return true
}

func (p anthropicProvider) route(c *call) {
	if c.r.Header.Get("anthropic-version") == "" {
		p.badRequest(c, "anthropic-version: header is required")
		return
	}
	switch {
	case c.r.Method == http.MethodPost && c.r.URL.Path == "/v1/messages":
		p.messages(c, false)
	case c.r.Method == http.MethodPost && c.r.URL.Path == "/v1/messages/count_tokens":
		p.messages(c, true)
	case c.r.Method == http.MethodGet && c.r.URL.Path == "/v1/models":
		p.models(c)
	default:
		p.writeError(c, apiError{Status: 404, Type: "not_found_error", Message: "Not Found"})
	}
}

func (p anthropicProvider) badRequest(c *call, msg string) {
	p.writeError(c, apiError{Status: 400, Type: "invalid_request_error", Message: msg})
}

type anRequest struct {
	Model     *string         `json:"model"`
	MaxTokens *json.Number    `json:"max_tokens"`
	Messages  json.RawMessage `json:"messages"`
	System    json.RawMessage `json:"system"`
	Stream    bool            `json:"stream"`
	Tools     []anTool        `json:"tools"`
	// StopSequences, Thinking and cache_control breakpoints: see
	// anthropic_features.go.
	StopSequences []string    `json:"stop_sequences"`
	Thinking      *anThinking `json:"thinking"`
	ToolChoice    *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
}

type anTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	Thinking  string          `json:"thinking"`
}

// anBlocks decodes message content (a string or an array of blocks).
func anBlocks(raw json.RawMessage) ([]anBlock, error) {
	if s, ok := jsonString(raw); ok {
		return []anBlock{{Type: "text", Text: &s}}, nil
	}
	var blocks []anBlock
	if isNull(raw) || json.Unmarshal(raw, &blocks) != nil {
		return nil, fmt.Errorf("Input should be a valid string or a valid list")
	}
	return blocks, nil
}

// toolResultText is the text of a tool_result's content (string or blocks).
func toolResultText(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	if s, ok := jsonString(raw); ok {
		return s
	}
	var blocks []anBlock
	_ = json.Unmarshal(raw, &blocks)
	var texts []string
	for _, b := range blocks {
		if b.Type == "text" && b.Text != nil {
			texts = append(texts, *b.Text)
		}
	}
	return strings.Join(texts, " ")
}

type anUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	CacheCreation            struct {
		Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	OutputTokens int    `json:"output_tokens"`
	ServiceTier  string `json:"service_tier"`
}

func (p anthropicProvider) messages(c *call, countOnly bool) {
	t := bytes.TrimSpace(c.body)
	if !json.Valid(t) || len(t) == 0 || t[0] != '{' {
		p.badRequest(c, "There was an issue with your request body: it is not valid JSON.")
		return
	}
	var req anRequest
	if err := json.Unmarshal(t, &req); err != nil {
		p.badRequest(c, "Invalid request body: "+err.Error())
		return
	}
	if req.Model == nil || *req.Model == "" {
		p.badRequest(c, "model: Field required")
		return
	}
	maxTokens := 0
	if !countOnly {
		if req.MaxTokens == nil {
			p.badRequest(c, "max_tokens: Field required")
			return
		}
		n, err := req.MaxTokens.Int64()
		if err != nil {
			p.badRequest(c, "max_tokens: Input should be a valid integer")
			return
		}
		if n < 1 {
			p.badRequest(c, "max_tokens: Input should be greater than or equal to 1")
			return
		}
		maxTokens = int(n)
	}
	if isNull(req.Messages) {
		p.badRequest(c, "messages: Field required")
		return
	}
	var msgs []anMessage
	if err := json.Unmarshal(req.Messages, &msgs); err != nil {
		p.badRequest(c, "messages: Input should be a valid list")
		return
	}
	if len(msgs) == 0 {
		p.badRequest(c, "messages: at least one message is required")
		return
	}

	thinking, msg := checkThinking(req.Thinking, maxTokens)
	if msg != "" && !countOnly {
		p.badRequest(c, msg)
		return
	}
	// The prompt prefix up to the last cache_control breakpoint, hashed
	// with the model and the tools (which come first in Anthropic's
	// cache order).
	var prefix cachePrefix
	prefix.add([]byte(*req.Model))
	var rawTools struct {
		Tools json.RawMessage `json:"tools"`
	}
	_ = json.Unmarshal(t, &rawTools)
	prefix.add(rawTools.Tools)
	hasBreak := hasCacheControl(rawTools.Tools)

	prompt := 0
	// System prompt.
	if !isNull(req.System) {
		sys, ok := jsonString(req.System)
		if !ok {
			var blocks []anBlock
			if err := json.Unmarshal(req.System, &blocks); err != nil {
				p.badRequest(c, "system: Input should be a valid string or a valid list of text blocks")
				return
			}
			var texts []string
			for i, b := range blocks {
				if b.Type != "text" || b.Text == nil {
					p.badRequest(c, fmt.Sprintf("system.%d.type: Input should be 'text'", i))
					return
				}
				texts = append(texts, *b.Text)
			}
			sys = strings.Join(texts, " ")
		}
		prompt += 3 + words(sys)
		prefix.add(req.System)
		if hasCacheControl(req.System) {
			hasBreak, prefix.tokens = true, prompt
		}
	}
	breakHash := append([]byte(nil), prefix.h...)
	for i, tl := range req.Tools {
		if tl.Name == "" {
			p.badRequest(c, fmt.Sprintf("tools.%d.name: Field required", i))
			return
		}
		if (tl.Type == "" || tl.Type == "custom") && isNull(tl.InputSchema) {
			p.badRequest(c, fmt.Sprintf("tools.%d.custom.input_schema: Field required", i))
			return
		}
	}

	// Messages: roles, alternation, content, tool_use/tool_result pairing.
	var prevToolUses []string
	lastUserText, lastToolText := "", ""
	lastIsToolResult := false
	for i, m := range msgs {
		if m.Role != "user" && m.Role != "assistant" {
			p.badRequest(c, fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i))
			return
		}
		if i > 0 && msgs[i-1].Role == m.Role {
			p.badRequest(c, fmt.Sprintf("messages: roles must alternate between \"user\" and \"assistant\", but found multiple %q roles in a row", m.Role))
			return
		}
		blocks, err := anBlocks(m.Content)
		if err != nil {
			p.badRequest(c, fmt.Sprintf("messages.%d.content: %v", i, err))
			return
		}
		empty := len(blocks) == 0 || (len(blocks) == 1 && blocks[0].Type == "text" && blocks[0].Text != nil && *blocks[0].Text == "")
		if empty && (i != len(msgs)-1 || m.Role != "assistant") {
			p.badRequest(c, fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i))
			return
		}
		var texts, toolUses, resultTexts []string
		results := map[string]bool{}
		for j, b := range blocks {
			where := fmt.Sprintf("messages.%d.content.%d", i, j)
			switch b.Type {
			case "text":
				if b.Text == nil {
					p.badRequest(c, where+".text: Field required")
					return
				}
				if *b.Text == "" && !empty {
					p.badRequest(c, where+": text content blocks must be non-empty")
					return
				}
				texts = append(texts, *b.Text)
			case "tool_use":
				if m.Role != "assistant" {
					p.badRequest(c, where+": tool_use blocks can only be in assistant messages")
					return
				}
				if b.ID == "" || b.Name == "" {
					p.badRequest(c, where+": tool_use blocks need an id and a name")
					return
				}
				toolUses = append(toolUses, b.ID)
				texts = append(texts, b.Name, string(b.Input))
			case "tool_result":
				if m.Role != "user" {
					p.badRequest(c, where+": tool_result blocks can only be in user messages")
					return
				}
				if !containsStr(prevToolUses, b.ToolUseID) {
					p.badRequest(c, fmt.Sprintf("%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", where, b.ToolUseID))
					return
				}
				results[b.ToolUseID] = true
				rt := toolResultText(b.Content)
				resultTexts = append(resultTexts, rt)
				texts = append(texts, rt)
			case "thinking":
				texts = append(texts, b.Thinking)
			case "":
				p.badRequest(c, where+".type: Field required")
				return
			}
		}
		if len(prevToolUses) > 0 {
			var missing []string
			for _, id := range prevToolUses {
				if !results[id] {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				p.badRequest(c, fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, strings.Join(missing, ", ")))
				return
			}
		}
		prevToolUses = toolUses
		text := strings.Join(texts, " ")
		prompt += 3 + words(text)
		prefix.add([]byte(m.Role), m.Content)
		if hasCacheControl(m.Content) {
			hasBreak, prefix.tokens = true, prompt
			breakHash = append(breakHash[:0], prefix.h...)
		}
		if m.Role == "user" {
			lastIsToolResult = len(resultTexts) > 0
			if lastIsToolResult {
				lastToolText = strings.Join(resultTexts, " ")
			} else {
				lastUserText = text
			}
		}
	}
	if len(prevToolUses) > 0 && !countOnly {
		p.badRequest(c, fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", len(msgs)-1, strings.Join(prevToolUses, ", ")))
		return
	}

	// Tool choice.
	var tool *anTool
	if len(req.Tools) > 0 {
		tool = &req.Tools[0]
		if tc := req.ToolChoice; tc != nil {
			switch tc.Type {
			case "auto", "any":
			case "none":
				tool = nil
			case "tool":
				tool = nil
				for i := range req.Tools {
					if req.Tools[i].Name == tc.Name {
						tool = &req.Tools[i]
					}
				}
				if tool == nil {
					p.badRequest(c, fmt.Sprintf("tool_choice: tool %q not found in tools", tc.Name))
					return
				}
			default:
				p.badRequest(c, "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
				return
			}
		}
		if lastIsToolResult {
			tool = nil
		}
	}
	if countOnly {
		c.writeJSON(http.StatusOK, map[string]any{"input_tokens": prompt})
		return
	}
	if c.beh.exactUsage && maxTokens <= 0 {
		p.badRequest(c, "fake: exact-usage needs max_tokens")
		return
	}

	u := anUsage{InputTokens: prompt, CacheReadInputTokens: c.beh.cacheRead, CacheCreationInputTokens: c.beh.cacheWrite, ServiceTier: "standard"}
	if hasBreak && !c.beh.cacheTokens && prefix.tokens > 0 {
		// The prefix is written the first time and read afterwards; the
		// three counts still add up to the counted prompt.
		prefix.h = breakHash
		if c.s.prompts.use(prefix.key()) {
			u.CacheReadInputTokens = prefix.tokens
		} else {
			u.CacheCreationInputTokens = prefix.tokens
		}
		u.InputTokens = prompt - prefix.tokens
	}
	u.CacheCreation.Ephemeral5m = u.CacheCreationInputTokens
	var text, args, stop, stopSeq string
	if tool != nil {
		args = schemaArgs(tool.InputSchema)
		u.OutputTokens = toolCallTokens(args)
		stop = "tool_use"
	} else {
		if lastIsToolResult {
			text = toolResultReply(c.pname, lastToolText)
		} else {
			text = echoReply(c.pname, lastUserText)
		}
		if !c.beh.exactUsage {
			text, stopSeq = cutAtStop(text, req.StopSequences)
		}
		var cut bool
		text, cut = shapeText(text, maxTokens, c.beh.exactUsage)
		u.OutputTokens = words(text)
		stop = "end_turn"
		switch {
		case cut:
			stop, stopSeq = "max_tokens", ""
		case stopSeq != "":
			stop = "stop_sequence"
		}
	}
	var think string
	if thinking {
		about := lastUserText
		if lastIsToolResult {
			about = lastToolText
		}
		think = thinkingText(about)
		u.OutputTokens += words(think)
	}
	var stopSeqJSON any
	if stopSeq != "" {
		stopSeqJSON = stopSeq
	}
	if c.beh.exactUsage {
		u.OutputTokens = maxTokens
	}
	id := c.id("msg_fake")
	var toolID string
	if tool != nil {
		toolID = c.id("toolu_fake")
	}

	if !req.Stream {
		var content []any
		if thinking {
			content = append(content, map[string]any{"type": "thinking", "thinking": think, "signature": thinkingSignature(think)})
		}
		if tool != nil {
			content = append(content, map[string]any{"type": "tool_use", "id": toolID, "name": tool.Name, "input": json.RawMessage(args)})
		} else {
			content = append(content, map[string]any{"type": "text", "text": text})
		}
		c.writeJSON(http.StatusOK, map[string]any{
			"id":            id,
			"type":          "message",
			"role":          "assistant",
			"model":         *req.Model,
			"content":       content,
			"stop_reason":   stop,
			"stop_sequence": stopSeqJSON,
			"usage":         u,
		})
		return
	}

	sw := c.startSSE("text/event-stream; charset=utf-8")
	startUsage := u
	startUsage.OutputTokens = 1
	sw.event("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id":            id,
		"type":          "message",
		"role":          "assistant",
		"model":         *req.Model,
		"content":       []any{},
		"stop_reason":   nil,
		"stop_sequence": nil,
		"usage":         startUsage,
	}})
	var block map[string]any
	var deltas []map[string]any
	if tool != nil {
		block = map[string]any{"type": "tool_use", "id": toolID, "name": tool.Name, "input": map[string]any{}}
		deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": ""})
		for _, piece := range splitPieces(args) {
			deltas = append(deltas, map[string]any{"type": "input_json_delta", "partial_json": piece})
		}
	} else {
		block = map[string]any{"type": "text", "text": ""}
		for _, piece := range wordChunks(text) {
			deltas = append(deltas, map[string]any{"type": "text_delta", "text": piece})
		}
	}
	index := 0
	if thinking {
		sw.event("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "thinking", "thinking": "", "signature": ""}})
		for _, piece := range wordChunks(think) {
			sw.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "thinking_delta", "thinking": piece}})
		}
		sw.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "signature_delta", "signature": thinkingSignature(think)}})
		sw.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		index = 1
	}
	sw.event("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": block})
	sw.event("ping", map[string]any{"type": "ping"})
	for i, d := range deltas {
		sw.event("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": d})
		if i == 0 && c.beh.streamError {
			sw.event("error", anErrorBody{Type: "error", Error: anErrorInfo{Type: "overloaded_error", Message: "Overloaded"}})
			return
		}
	}
	sw.event("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
	sw.event("message_delta", map[string]any{
		"type":  "message_delta",
		"delta": map[string]any{"stop_reason": stop, "stop_sequence": stopSeqJSON},
		"usage": map[string]any{
			"input_tokens":                u.InputTokens,
			"cache_creation_input_tokens": u.CacheCreationInputTokens,
			"cache_read_input_tokens":     u.CacheReadInputTokens,
			"output_tokens":               u.OutputTokens,
		},
	})
	sw.event("message_stop", map[string]any{"type": "message_stop"})
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// anthropicModels are listed by GET /v1/models.
var anthropicModels = []struct{ id, name, created string }{
	{"claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"},
	{"claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-01T00:00:00Z"},
	{"claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"},
}

func (anthropicProvider) models(c *call) {
	data := make([]any, len(anthropicModels))
	for i, m := range anthropicModels {
		data[i] = map[string]any{"type": "model", "id": m.id, "display_name": m.name, "created_at": m.created}
	}
	c.writeJSON(http.StatusOK, map[string]any{
		"data":     data,
		"has_more": false,
		"first_id": anthropicModels[0].id,
		"last_id":  anthropicModels[len(anthropicModels)-1].id,
	})
}
