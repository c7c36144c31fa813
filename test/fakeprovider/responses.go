package fakeprovider

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// The OpenAI Responses API (POST /v1/responses), as served by OpenAI and
// by Azure (/openai/v1/responses, /openai/responses?api-version=...).
//
// Sources:
//   - request and response object:
//     https://platform.openai.com/docs/api-reference/responses/create
//   - streaming: semantic events with `event:` names, a `type` equal to the
//     name and an increasing `sequence_number`, ending with
//     response.completed (no [DONE]):
//     https://platform.openai.com/docs/api-reference/responses-streaming
//
// The fake answers text only: an echo of the last user input.
func (p openaiProvider) responses(c *call) {
	var req struct {
		Model           *string         `json:"model"`
		Input           json.RawMessage `json:"input"`
		Instructions    *string         `json:"instructions"`
		Stream          bool            `json:"stream"`
		MaxOutputTokens *int            `json:"max_output_tokens"`
		PreviousID      *string         `json:"previous_response_id"`
		Store           *bool           `json:"store"`
	}
	if !p.decode(c, &req) {
		return
	}
	if req.Model == nil || *req.Model == "" {
		p.badRequest(c, "Missing required parameter: 'model'.", "model", "missing_required_parameter")
		return
	}
	var previous any // null in the response object without one
	if req.PreviousID != nil {
		if !c.s.stored.has(*req.PreviousID) {
			p.badRequest(c, "Previous response with id '"+*req.PreviousID+"' not found.", "previous_response_id", "previous_response_not_found")
			return
		}
		previous = *req.PreviousID
	}
	var last string
	if s, ok := jsonString(req.Input); ok {
		last = s
	} else {
		var items []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		if err := json.Unmarshal(req.Input, &items); err != nil || len(items) == 0 {
			p.badRequest(c, "Invalid type for 'input': expected a string or an array of input items.", "input", "invalid_type")
			return
		}
		for _, it := range items {
			if it.Role != "user" {
				continue
			}
			if s, ok := jsonString(it.Content); ok {
				last = s
				continue
			}
			var parts []struct{ Type, Text string }
			_ = json.Unmarshal(it.Content, &parts)
			var texts []string
			for _, pt := range parts {
				if pt.Type == "input_text" {
					texts = append(texts, pt.Text)
				}
			}
			last = strings.Join(texts, " ")
		}
	}
	maxTokens := 0
	if req.MaxOutputTokens != nil {
		maxTokens = *req.MaxOutputTokens
	}
	text, cut := shapeText(echoReply(c.pname, last), maxTokens, c.beh.exactUsage)
	prompt, completion := words(last), words(text)
	if req.Instructions != nil {
		prompt += words(*req.Instructions)
	}
	if c.beh.exactUsage && maxTokens > 0 {
		completion = maxTokens
	}
	id, msgID, created := c.id("resp_fake"), c.id("msg_fake"), c.now.Unix()
	// Stored by default, as OpenAI does, before any byte is sent: a
	// client may continue from it as soon as it has the id.
	store := req.Store == nil || *req.Store
	if store {
		c.s.stored.add(id)
	}
	usage := map[string]any{
		"input_tokens": prompt, "input_tokens_details": map[string]any{"cached_tokens": c.beh.cached},
		"output_tokens": completion, "output_tokens_details": map[string]any{"reasoning_tokens": 0},
		"total_tokens": prompt + completion,
	}
	part := map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
	status := "completed"
	var incomplete any
	if cut {
		status, incomplete = "incomplete", map[string]any{"reason": "max_output_tokens"}
	}
	item := map[string]any{"type": "message", "id": msgID, "status": status, "role": "assistant", "content": []any{part}}
	resp := func(status string, output []any, usage any) map[string]any {
		return map[string]any{
			"id": id, "object": "response", "created_at": created, "status": status, "error": nil,
			"incomplete_details": incomplete, "instructions": req.Instructions, "max_output_tokens": req.MaxOutputTokens,
			"model": *req.Model, "output": output, "parallel_tool_calls": true, "previous_response_id": previous,
			"store": store, "temperature": 1.0, "top_p": 1.0, "text": map[string]any{"format": map[string]any{"type": "text"}},
			"tool_choice": "auto", "tools": []any{}, "truncation": "disabled", "usage": usage, "metadata": map[string]any{},
		}
	}
	if !req.Stream {
		c.writeJSON(http.StatusOK, resp(status, []any{item}, usage))
		return
	}
	sw := c.startSSE("text/event-stream; charset=utf-8")
	seq := 0
	ev := func(typ string, fields map[string]any) {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		sw.event(typ, fields)
	}
	ev("response.created", map[string]any{"response": resp("in_progress", []any{}, nil)})
	ev("response.in_progress", map[string]any{"response": resp("in_progress", []any{}, nil)})
	ev("response.output_item.added", map[string]any{"output_index": 0,
		"item": map[string]any{"type": "message", "id": msgID, "status": "in_progress", "role": "assistant", "content": []any{}}})
	ev("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0,
		"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
	for i, piece := range wordChunks(text) {
		ev("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []any{}})
		if i == 0 && c.beh.streamError {
			ev("error", map[string]any{"code": "server_error", "message": "The server had an error while processing your request. Sorry about that!", "param": nil})
			return
		}
	}
	ev("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": text, "logprobs": []any{}})
	ev("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part})
	ev("response.output_item.done", map[string]any{"output_index": 0, "item": item})
	final := "response.completed"
	if cut {
		final = "response.incomplete"
	}
	ev(final, map[string]any{"response": resp(status, []any{item}, usage)})
}

// maxStored bounds the ids a fake remembers, so a long `weir dev` session
// does not grow without limit; the oldest is forgotten first.
const maxStored = 4096

// storedResponses are the ids of the responses a fake stored, which
// previous_response_id may name. Only ids are kept: the fake's replies do
// not depend on earlier turns.
type storedResponses struct {
	mu    sync.Mutex
	ids   map[string]bool
	order []string
}

func (s *storedResponses) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = make(map[string]bool)
	}
	if len(s.order) >= maxStored {
		delete(s.ids, s.order[0])
		s.order = s.order[1:]
	}
	s.ids[id] = true
	s.order = append(s.order, id)
}

func (s *storedResponses) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}
