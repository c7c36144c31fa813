package openai

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// Invalid is an errs.ErrInvalidRequest with a message.
func Invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errs.ErrInvalidRequest}, a...)...)
}

// Unsupported is an errs.ErrUnsupported with a message.
func Unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errs.ErrUnsupported}, a...)...)
}

// Role is the OpenAI role of a turn a [Visitor] is told to start.
type Role uint8

const (
	User Role = iota
	Assistant
	Tool
)

// Visitor receives a chat request's messages from [ReadMessages], in
// order. What every target format checks the same way is checked before a
// method is called: roles, the shape of content, text parts, tool calls
// and tool_call_id. What differs between formats (which media they take,
// how a tool result is written) is the visitor's to check; positions i
// (messages[i]) and j (content[j]) are given for its error messages.
type Visitor interface {
	// System receives a system or developer message's content: a string
	// or an array of text parts.
	System(content gjson.Result)
	// Turn starts the content of a user, assistant or tool message.
	Turn(role Role)
	// Text receives a non-empty JSON string: string content, or the text
	// of a text or refusal part.
	Text(s gjson.Result)
	// Image receives an image_url part's URL; user is false in assistant
	// content.
	Image(i, j int, url string, user bool) error
	// File receives a file part's file.file_data, in user content only.
	File(i, j int, data string) error
	// Audio receives an input_audio part; user is false in assistant
	// content.
	Audio(i, j int, part gjson.Result, user bool) error
	// ToolCall receives an assistant's tool call: id and name are
	// non-empty JSON strings, args the arguments' JSON object text ("{}"
	// when there were none).
	ToolCall(id, name gjson.Result, args string)
	// ToolResult receives a tool message: id is a non-empty JSON string,
	// content whatever the client sent.
	ToolResult(i int, id, content gjson.Result) error
}

// Each calls fn with each element of the array a and its index, and stops
// at the first error.
func Each(a gjson.Result, fn func(j int, v gjson.Result) error) error {
	var err error
	j := 0
	a.ForEach(func(_, v gjson.Result) bool {
		err = fn(j, v)
		j++
		return err == nil
	})
	return err
}

// ReadMessages walks an OpenAI messages array (already known to be an
// array) into v.
func ReadMessages(msgs gjson.Result, v Visitor) error {
	return Each(msgs, func(i int, m gjson.Result) error { return readMessage(v, i, m) })
}

func readMessage(v Visitor, i int, m gjson.Result) error {
	if !m.IsObject() {
		return Invalid("messages[%d] must be an object", i)
	}
	var role, content, toolCalls, toolCallID gjson.Result
	m.ForEach(func(k, val gjson.Result) bool {
		switch k.Str {
		case "role":
			role = val
		case "content":
			content = val
		case "tool_calls":
			toolCalls = val
		case "tool_call_id":
			toolCallID = val
		}
		return true
	})
	if role.Type != gjson.String {
		return Invalid("messages[%d].role is required", i)
	}
	switch role.Str {
	case "system", "developer":
		if err := checkSystem(i, content); err != nil {
			return err
		}
		v.System(content)
	case "user":
		v.Turn(User)
		return readContent(v, i, content, true)
	case "assistant":
		v.Turn(Assistant)
		if err := readContent(v, i, content, false); err != nil {
			return err
		}
		return readToolCalls(v, i, toolCalls)
	case "tool":
		v.Turn(Tool)
		if toolCallID.Type != gjson.String || toolCallID.Str == "" {
			return Invalid("messages[%d].tool_call_id is required", i)
		}
		return v.ToolResult(i, toolCallID, content)
	case "function":
		return Unsupported("messages[%d]: the deprecated function role (use tool)", i)
	default:
		return Invalid("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, role.Str)
	}
	return nil
}

// checkSystem validates system content: a string or an array of text parts.
func checkSystem(i int, c gjson.Result) error {
	switch {
	case c.Type == gjson.String:
		return nil
	case c.IsArray():
		return Each(c, func(j int, p gjson.Result) error {
			if p.Get("type").Str != "text" || p.Get("text").Type != gjson.String {
				return Invalid("messages[%d].content[%d]: system content parts must be text", i, j)
			}
			return nil
		})
	}
	return Invalid("messages[%d].content must be a string or an array of text parts", i)
}

// AppendSystem writes the system contents sys (as given to
// [Visitor.System]) as a list of text items: open, then each non-empty
// text as item + the JSON string + "}", comma-separated, then close.
// Nothing is written when there is no text.
func AppendSystem(out []byte, sys []gjson.Result, open, item, close string) []byte {
	start := len(out)
	out = append(out, open...)
	n := 0
	text := func(s gjson.Result) {
		if s.Type != gjson.String || s.Str == "" {
			return
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, item...)
		out = jsonw.AppendRawString(out, s)
		out = append(out, '}')
	}
	for _, s := range sys {
		if s.Type == gjson.String {
			text(s)
			continue
		}
		s.ForEach(func(_, p gjson.Result) bool {
			text(p.Get("text"))
			return true
		})
	}
	if n == 0 {
		return out[:start]
	}
	return append(out, close...)
}

func readContent(v Visitor, i int, c gjson.Result, user bool) error {
	switch {
	case !jsonw.Present(c):
		return nil
	case c.Type == gjson.String:
		if c.Str != "" {
			v.Text(c)
		}
		return nil
	case c.IsArray():
		return Each(c, func(j int, p gjson.Result) error { return ReadPart(v, i, j, p, user) })
	}
	return Invalid("messages[%d].content must be a string, an array of parts or null", i)
}

// ReadPart reads messages[i].content[j] into v; user is false in assistant
// content. Translators that write a tool result's parts as blocks call it
// for each of them.
func ReadPart(v Visitor, i, j int, p gjson.Result, user bool) error {
	if !p.IsObject() {
		return Invalid("messages[%d].content[%d] must be an object", i, j)
	}
	typ := p.Get("type")
	switch typ.Str {
	case "text", "refusal":
		s := p.Get(typ.Str)
		if s.Type != gjson.String {
			return Invalid("messages[%d].content[%d].%s must be a string", i, j, typ.Str)
		}
		if s.Str != "" {
			v.Text(s)
		}
		return nil
	case "image_url":
		u := p.Get("image_url")
		if u.IsObject() {
			u = u.Get("url")
		}
		if user && u.Type != gjson.String {
			return Invalid("messages[%d].content[%d].image_url.url must be a string", i, j)
		}
		return v.Image(i, j, u.Str, user)
	case "file":
		if !user {
			return Invalid("messages[%d].content[%d]: files are allowed in user messages only", i, j)
		}
		d := p.Get("file.file_data")
		if d.Type != gjson.String {
			return Unsupported("messages[%d].content[%d]: file parts without inline file_data", i, j)
		}
		return v.File(i, j, d.Str)
	case "input_audio":
		return v.Audio(i, j, p, user)
	}
	return Invalid("messages[%d].content[%d].type %q is not a known content part type", i, j, typ.Str)
}

func readToolCalls(v Visitor, i int, calls gjson.Result) error {
	if !jsonw.Present(calls) {
		return nil
	}
	if !calls.IsArray() {
		return Invalid("messages[%d].tool_calls must be an array", i)
	}
	return Each(calls, func(j int, c gjson.Result) error {
		if !c.IsObject() {
			return Invalid("messages[%d].tool_calls[%d] must be an object", i, j)
		}
		if typ := c.Get("type"); jsonw.Present(typ) && typ.Str != "function" {
			return Unsupported("messages[%d].tool_calls[%d].type %q", i, j, typ.String())
		}
		id, name, args := c.Get("id"), c.Get("function.name"), c.Get("function.arguments")
		if id.Type != gjson.String || id.Str == "" {
			return Invalid("messages[%d].tool_calls[%d].id is required", i, j)
		}
		if name.Type != gjson.String || name.Str == "" {
			return Invalid("messages[%d].tool_calls[%d].function.name is required", i, j)
		}
		input := "{}"
		switch {
		case !jsonw.Present(args):
		case args.Type == gjson.String:
			if s := strings.TrimSpace(args.Str); s != "" {
				if !gjson.Valid(s) || s[0] != '{' {
					return Invalid("messages[%d].tool_calls[%d].function.arguments must be a JSON object", i, j)
				}
				input = s
			}
		default:
			return Invalid("messages[%d].tool_calls[%d].function.arguments must be a string", i, j)
		}
		v.ToolCall(id, name, input)
		return nil
	})
}

// Conversation is the part of a [Visitor] that every format writing
// turns shares: the output, its turns (merged by role, empty ones
// dropped) and the system contents, kept for the format's own system
// field. A writer embeds it and adds the content it writes.
type Conversation struct {
	Out   []byte
	Turns jsonw.Turns
	Sys   []gjson.Result
	// AssistantRole is the format's name for the assistant's turns
	// ("assistant", or Gemini's "model"); user and tool turns are "user".
	AssistantRole string
}

// System keeps a system or developer message's content.
func (c *Conversation) System(s gjson.Result) { c.Sys = append(c.Sys, s) }

// Turn starts (or continues) the turn of role.
func (c *Conversation) Turn(r Role) {
	role := "user"
	if r == Assistant {
		role = c.AssistantRole
	}
	c.Out = c.Turns.Open(c.Out, role)
}

// Item starts an item of the open turn: the caller appends its JSON.
func (c *Conversation) Item() { c.Out = c.Turns.Item(c.Out) }

// Close ends the last turn; it reports an error if no turn has content,
// which every format refuses.
func (c *Conversation) Close() error {
	c.Out = c.Turns.Close(c.Out)
	if c.Turns.Count() == 0 {
		return Invalid("messages must contain at least one non-empty user or assistant message")
	}
	return nil
}
