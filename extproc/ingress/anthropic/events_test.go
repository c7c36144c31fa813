package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// validateEvents checks a translated stream against the event flow in
// Anthropic's "Streaming Messages" guide:
//
//	message_start
//	(content_block_start content_block_delta* content_block_stop)*
//	message_delta
//	message_stop
//
// with block indexes 0, 1, 2… and deltas matching the block's kind. An
// error event may end the stream at any point. Every event has an event:
// line whose name equals the data's type, and nothing follows the end.
func validateEvents(b []byte) error {
	if len(b) == 0 {
		return fmt.Errorf("empty stream")
	}
	if !bytes.HasSuffix(b, []byte("\n\n")) {
		return fmt.Errorf("stream does not end with a blank line")
	}
	const (
		wantStart = iota
		inMessage // between blocks
		inBlock
		afterDelta // message_delta seen
		ended
	)
	state, index, kind := wantStart, -1, ""
	for i, ev := range strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n\n") {
		lines := strings.Split(ev, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "event: ") || !strings.HasPrefix(lines[1], "data: ") {
			return fmt.Errorf("event %d is not one event: line and one data: line: %q", i, ev)
		}
		name := strings.TrimPrefix(lines[0], "event: ")
		var d struct {
			Type         string `json:"type"`
			Index        *int   `json:"index"`
			ContentBlock *struct {
				Type string `json:"type"`
			} `json:"content_block"`
			Delta *struct {
				Type       string  `json:"type"`
				StopReason *string `json:"stop_reason"`
			} `json:"delta"`
			Message *struct {
				ID, Type, Role string
			} `json:"message"`
			Error *struct{ Type, Message string } `json:"error"`
			Usage *struct {
				OutputTokens *int `json:"output_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], "data: ")), &d); err != nil {
			return fmt.Errorf("event %d: data is not JSON: %v", i, err)
		}
		if d.Type != name {
			return fmt.Errorf("event %d: event name %q, data type %q", i, name, d.Type)
		}
		if state == ended {
			return fmt.Errorf("event %d (%s) after the end", i, name)
		}
		idx := func() error {
			if d.Index == nil || *d.Index != index {
				return fmt.Errorf("event %d (%s): index %v, want %d", i, name, d.Index, index)
			}
			return nil
		}
		switch name {
		case "error":
			if d.Error == nil || !anthropicErrorTypes[d.Error.Type] || d.Error.Message == "" {
				return fmt.Errorf("event %d: bad error event", i)
			}
			state = ended
		case "ping":
		case "message_start":
			if state != wantStart || d.Message == nil || !strings.HasPrefix(d.Message.ID, "msg_") || d.Message.Type != "message" || d.Message.Role != "assistant" {
				return fmt.Errorf("event %d: misplaced or bad message_start", i)
			}
			state = inMessage
		case "content_block_start":
			if state != inMessage || d.ContentBlock == nil {
				return fmt.Errorf("event %d: misplaced or bad content_block_start", i)
			}
			index++
			kind = d.ContentBlock.Type
			if kind != "text" && kind != "tool_use" {
				return fmt.Errorf("event %d: block type %q", i, kind)
			}
			if err := idx(); err != nil {
				return err
			}
			state = inBlock
		case "content_block_delta":
			if state != inBlock || d.Delta == nil {
				return fmt.Errorf("event %d: misplaced content_block_delta", i)
			}
			if err := idx(); err != nil {
				return err
			}
			if want := map[string]string{"text": "text_delta", "tool_use": "input_json_delta"}[kind]; d.Delta.Type != want {
				return fmt.Errorf("event %d: %s in a %s block", i, d.Delta.Type, kind)
			}
		case "content_block_stop":
			if state != inBlock {
				return fmt.Errorf("event %d: misplaced content_block_stop", i)
			}
			if err := idx(); err != nil {
				return err
			}
			state = inMessage
		case "message_delta":
			if state != inMessage || d.Delta == nil || d.Delta.StopReason == nil || d.Usage == nil || d.Usage.OutputTokens == nil {
				return fmt.Errorf("event %d: misplaced or bad message_delta", i)
			}
			state = afterDelta
		case "message_stop":
			if state != afterDelta {
				return fmt.Errorf("event %d: message_stop before message_delta", i)
			}
			state = ended
		default:
			return fmt.Errorf("event %d: unknown event %q", i, name)
		}
	}
	if state != ended {
		return fmt.Errorf("stream ends without message_stop or error")
	}
	return nil
}
