package anthropic

import (
	"fmt"
	"math"
	"strconv"

	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errs.ErrInvalidRequest}, a...)...)
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errs.ErrUnsupported}, a...)...)
}

// reqFields are the top-level request fields.
type reqFields struct {
	model, messages, system, maxTokens, stop, temperature, topP, topK gjson.Result
	stream, metadata, tools, toolChoice                               gjson.Result
}

// readFields sorts the top-level fields, rejecting unknown ones as
// Anthropic does, and duplicate ones: readers disagree on which value of
// a repeated key wins, so Weir could authorise one model and send another.
func readFields(root gjson.Result) (reqFields, error) {
	var f reqFields
	var err error
	var seen jsonw.Keys
	root.ForEach(func(k, v gjson.Result) bool {
		if seen.Add(k.Str) {
			err = duplicate(k.Str)
			return false
		}
		switch k.Str {
		case "model":
			f.model = v
		case "messages":
			f.messages = v
		case "system":
			f.system = v
		case "max_tokens":
			f.maxTokens = v
		case "stop_sequences":
			f.stop = v
		case "temperature":
			f.temperature = v
		case "top_p":
			f.topP = v
		case "top_k":
			f.topK = v
		case "stream":
			f.stream = v
		case "metadata":
			f.metadata = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
		case "thinking", "service_tier":
			// Dropped: see the package documentation.
		case "container", "mcp_servers", "context_management":
			err = unsupported("%s (Anthropic-only feature) on a non-Anthropic backend", k.Str)
		default:
			err = invalid("%s: Extra inputs are not permitted", k.String())
		}
		return err == nil
	})
	return f, err
}

func duplicate(key string) error {
	return errs.Refuse(errs.RuleRequestDuplicateKey, invalid("duplicate key %q in the request body", key))
}

func isInt(r gjson.Result) bool {
	return r.Type == gjson.Number && r.Num == math.Trunc(r.Num) && !math.IsInf(r.Num, 0)
}

// translateRequest turns a Messages request into an OpenAI chat request.
// count relaxes the rules for count_tokens bodies (no max_tokens) and
// skips nothing else, so both endpoints reject the same bad input.
func translateRequest(body []byte, count bool) (out []byte, model string, stream bool, err error) {
	js := jsonw.View(body)
	if !gjson.Valid(js) {
		return nil, "", false, errs.ErrInvalidJSON
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, "", false, invalid("body must be a JSON object")
	}
	f, err := readFields(root)
	if err != nil {
		return nil, "", false, err
	}
	if f.model.Type != gjson.String || f.model.Str == "" {
		return nil, "", false, invalid("model: field required")
	}
	model = f.model.Str
	if jsonw.Present(f.stream) {
		if f.stream.Type != gjson.True && f.stream.Type != gjson.False {
			return nil, "", false, invalid("stream: must be a boolean")
		}
		stream = f.stream.Type == gjson.True
	}
	if !jsonw.Present(f.maxTokens) {
		if !count {
			return nil, "", false, invalid("max_tokens: field required")
		}
	} else if !isInt(f.maxTokens) || f.maxTokens.Num < 1 {
		return nil, "", false, invalid("max_tokens: must be a positive integer")
	} else if f.maxTokens.Num > provider.MaxOutputTokens {
		// Checked here so the error names the client's field, not the
		// translated max_completion_tokens.
		return nil, "", false, errs.Refuse(errs.RuleRequestReplyLimit, invalid("max_tokens: %s exceeds the largest reply any model gives (%d tokens)", f.maxTokens.Raw, provider.MaxOutputTokens))
	}
	if !f.messages.IsArray() {
		return nil, "", false, invalid("messages: field required, an array")
	}

	out = make([]byte, 0, len(body)+256)
	out = append(out, `{"model":`...)
	out = jsonw.AppendRawString(out, f.model)
	out = append(out, `,"messages":[`...)
	w := msgWriter{out: out}
	if err := w.system(f.system); err != nil {
		return nil, "", false, err
	}
	nMsgs := 0
	f.messages.ForEach(func(_, m gjson.Result) bool {
		err = w.message(nMsgs, m)
		nMsgs++
		return err == nil
	})
	if err != nil {
		return nil, "", false, err
	}
	if nMsgs == 0 {
		return nil, "", false, invalid("messages: at least one message is required")
	}
	out = append(w.out, ']')
	if jsonw.Present(f.maxTokens) {
		out = append(out, `,"max_completion_tokens":`...)
		out = append(out, f.maxTokens.Raw...)
	}
	if out, err = appendStop(out, f.stop); err != nil {
		return nil, "", false, err
	}
	for _, p := range [...]struct {
		name string
		v    gjson.Result
	}{{"temperature", f.temperature}, {"top_p", f.topP}} {
		if !jsonw.Present(p.v) {
			continue
		}
		if p.v.Type != gjson.Number {
			return nil, "", false, invalid("%s: must be a number", p.name)
		}
		out = append(out, `,"`...)
		out = append(out, p.name...)
		out = append(out, `":`...)
		out = append(out, p.v.Raw...)
	}
	if jsonw.Present(f.topK) && (!isInt(f.topK) || f.topK.Num < 0) {
		return nil, "", false, invalid("top_k: must be a non-negative integer")
	}
	if jsonw.Present(f.metadata) {
		if !f.metadata.IsObject() {
			return nil, "", false, invalid("metadata: must be an object")
		}
		u := f.metadata.Get("user_id")
		if jsonw.Present(u) && u.Type != gjson.String {
			return nil, "", false, invalid("metadata.user_id: must be a string")
		}
		if jsonw.IsNonEmptyString(u) {
			out = append(out, `,"user":`...)
			out = jsonw.AppendRawString(out, u)
		}
	}
	if out, err = appendTools(out, f.tools, f.toolChoice); err != nil {
		return nil, "", false, err
	}
	if stream {
		out = append(out, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(out, '}'), model, stream, nil
}

// msgWriter appends OpenAI messages to out.
type msgWriter struct {
	out []byte
	n   int // messages written
	// user is true while a user message with a content array is open.
	user      bool
	userParts int
}

func (w *msgWriter) begin(role string) {
	if w.n > 0 {
		w.out = append(w.out, ',')
	}
	w.n++
	w.out = append(w.out, `{"role":"`...)
	w.out = append(w.out, role...)
	w.out = append(w.out, `","content":`...)
}

// system writes the system prompt as the first message.
func (w *msgWriter) system(s gjson.Result) error {
	switch {
	case !jsonw.Present(s):
		return nil
	case s.Type == gjson.String:
		if s.Str != "" {
			w.begin("system")
			w.out = append(w.out, s.Raw...)
			w.out = append(w.out, '}')
		}
		return nil
	case s.IsArray():
		var err error
		j, n := 0, 0
		s.ForEach(func(_, b gjson.Result) bool {
			text := b.Get("text")
			if !b.IsObject() || b.Get("type").Str != "text" || text.Type != gjson.String {
				err = invalid("system[%d]: system blocks must be text blocks", j)
				return false
			}
			j++
			if text.Str == "" {
				return true
			}
			if n == 0 {
				w.begin("system")
				w.out = append(w.out, '[')
			} else {
				w.out = append(w.out, ',')
			}
			n++
			w.out = append(w.out, `{"type":"text","text":`...)
			w.out = append(w.out, text.Raw...)
			w.out = append(w.out, '}')
			return true
		})
		if err != nil {
			return err
		}
		if n > 0 {
			w.out = append(w.out, "]}"...)
		}
		return nil
	}
	return invalid("system: must be a string or an array of text blocks")
}

func (w *msgWriter) message(i int, m gjson.Result) error {
	if !m.IsObject() {
		return invalid("messages.%d: must be an object", i)
	}
	var role, content gjson.Result
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "role":
			role = v
		case "content":
			content = v
		}
		return true
	})
	if role.Type != gjson.String {
		return invalid("messages.%d.role: field required", i)
	}
	if !jsonw.Present(content) {
		return invalid("messages.%d.content: field required", i)
	}
	if content.Type != gjson.String && !content.IsArray() {
		return invalid("messages.%d.content: must be a string or an array of content blocks", i)
	}
	switch role.Str {
	case "user":
		return w.userMessage(i, content)
	case "assistant":
		return w.assistantMessage(i, content)
	}
	return invalid("messages.%d.role: %q is not one of user, assistant", i, role.Str)
}

// userPart opens a user message with a content array if none is open,
// and starts a part in it.
func (w *msgWriter) userPart() {
	if !w.user {
		w.begin("user")
		w.out = append(w.out, '[')
		w.user, w.userParts = true, 0
	}
	if w.userParts > 0 {
		w.out = append(w.out, ',')
	}
	w.userParts++
}

func (w *msgWriter) closeUser() {
	if w.user {
		w.out = append(w.out, "]}"...)
		w.user = false
	}
}

func (w *msgWriter) userMessage(i int, c gjson.Result) error {
	if c.Type == gjson.String {
		w.begin("user")
		w.out = append(w.out, c.Raw...)
		w.out = append(w.out, '}')
		return nil
	}
	var err error
	j := 0
	c.ForEach(func(_, b gjson.Result) bool {
		err = w.userBlock(i, j, b)
		j++
		return err == nil
	})
	if err != nil {
		return err
	}
	if j == 0 {
		return invalid("messages.%d.content: must not be empty", i)
	}
	w.closeUser()
	return nil
}

func blockType(b gjson.Result) string {
	if !b.IsObject() {
		return ""
	}
	return b.Get("type").Str
}

func (w *msgWriter) userBlock(i, j int, b gjson.Result) error {
	typ := blockType(b)
	switch typ {
	case "text":
		t := b.Get("text")
		if t.Type != gjson.String {
			return invalid("messages.%d.content.%d.text: must be a string", i, j)
		}
		if t.Str == "" {
			return nil
		}
		w.userPart()
		w.out = append(w.out, `{"type":"text","text":`...)
		w.out = append(w.out, t.Raw...)
		w.out = append(w.out, '}')
		return nil
	case "image", "document":
		w.userPart()
		var err error
		w.out, err = appendMedia(w.out, "messages."+strconv.Itoa(i)+".content."+strconv.Itoa(j), b, typ)
		return err
	case "tool_result":
		w.closeUser()
		return w.toolResult(i, j, b)
	case "tool_use", "thinking", "redacted_thinking":
		return invalid("messages.%d.content.%d: %s blocks are allowed in assistant messages only", i, j, typ)
	case "":
		return invalid("messages.%d.content.%d: must be an object with a type", i, j)
	case "search_result", "container_upload", "server_tool_use", "web_search_tool_result":
		return unsupported("messages.%d.content.%d: %s blocks on a non-Anthropic backend", i, j, typ)
	}
	return invalid("messages.%d.content.%d.type: %q is not a known content block type", i, j, typ)
}

// appendMedia writes an image or document block as an OpenAI part. where
// names the block in errors.
func appendMedia(out []byte, where string, b gjson.Result, typ string) ([]byte, error) {
	src := b.Get("source")
	if !src.IsObject() {
		return out, invalid("%s.source: field required", where)
	}
	st := src.Get("type").Str
	switch {
	case st == "base64":
		media, data := src.Get("media_type"), src.Get("data")
		if !jsonw.IsNonEmptyString(media) || !jsonw.IsNonEmptyString(data) {
			return out, invalid("%s.source: base64 sources need media_type and data strings", where)
		}
		if typ == "image" {
			if !strings.HasPrefix(media.Str, "image/") {
				return out, invalid("%s.source.media_type: %q is not an image type", where, media.Str)
			}
			out = append(out, `{"type":"image_url","image_url":{"url":"data:`...)
		} else {
			if media.Str != "application/pdf" {
				return out, unsupported("%s.source.media_type: %q documents (base64 PDF only)", where, media.Str)
			}
			out = append(out, `{"type":"file","file":{"filename":`...)
			if t := b.Get("title"); jsonw.IsNonEmptyString(t) {
				out = jsonw.AppendRawString(out, t)
			} else {
				out = append(out, `"document.pdf"`...)
			}
			out = append(out, `,"file_data":"data:`...)
		}
		out = append(out, jsonw.RawStringBody(media)...)
		out = append(out, ";base64,"...)
		out = append(out, jsonw.RawStringBody(data)...)
		return append(out, `"}}`...), nil
	case st == "url" && typ == "image":
		u := src.Get("url")
		if !jsonw.IsNonEmptyString(u) {
			return out, invalid("%s.source.url: must be a non-empty string", where)
		}
		out = append(out, `{"type":"image_url","image_url":{"url":`...)
		out = append(out, u.Raw...)
		return append(out, `}}`...), nil
	case st == "text" && typ == "document":
		d := src.Get("data")
		if d.Type != gjson.String {
			return out, invalid("%s.source.data: must be a string", where)
		}
		out = append(out, `{"type":"text","text":`...)
		out = append(out, d.Raw...)
		return append(out, '}'), nil
	case st == "url" || st == "file" || st == "content":
		return out, unsupported("%s: %s source type %q on a non-Anthropic backend", where, typ, st)
	}
	return out, invalid("%s.source.type: %q is not a known %s source type", where, st, typ)
}

// toolResult writes one tool message.
func (w *msgWriter) toolResult(i, j int, b gjson.Result) error {
	id, c := b.Get("tool_use_id"), b.Get("content")
	if !jsonw.IsNonEmptyString(id) {
		return invalid("messages.%d.content.%d.tool_use_id: field required", i, j)
	}
	isErr := b.Get("is_error")
	if jsonw.Present(isErr) && isErr.Type != gjson.True && isErr.Type != gjson.False {
		return invalid("messages.%d.content.%d.is_error: must be a boolean", i, j)
	}
	failed := isErr.Type == gjson.True
	w.begin("tool")
	start := len(w.out)
	switch {
	case !jsonw.Present(c) || (c.Type == gjson.String && c.Str == ""):
		if failed {
			w.out = append(w.out, `"Error"`...)
		} else {
			w.out = append(w.out, `""`...)
		}
	case c.Type == gjson.String:
		if failed {
			w.out = append(w.out, `"Error: `...)
			w.out = append(w.out, c.Raw[1:]...)
		} else {
			w.out = append(w.out, c.Raw...)
		}
	case c.IsArray():
		w.out = append(w.out, '[')
		n := 0
		if failed {
			w.out = append(w.out, `{"type":"text","text":"Error:"}`...)
			n++
		}
		var err error
		k := 0
		c.ForEach(func(_, p gjson.Result) bool {
			typ := blockType(p)
			switch typ {
			case "text":
				t := p.Get("text")
				if t.Type != gjson.String {
					err = invalid("messages.%d.content.%d.content.%d.text: must be a string", i, j, k)
					return false
				}
				if t.Str == "" {
					break
				}
				if n > 0 {
					w.out = append(w.out, ',')
				}
				n++
				w.out = append(w.out, `{"type":"text","text":`...)
				w.out = append(w.out, t.Raw...)
				w.out = append(w.out, '}')
			case "image", "document":
				if n > 0 {
					w.out = append(w.out, ',')
				}
				n++
				if w.out, err = appendMedia(w.out, fmt.Sprintf("messages.%d.content.%d.content.%d", i, j, k), p, typ); err != nil {
					return false
				}
			default:
				err = invalid("messages.%d.content.%d.content.%d: tool results hold text, image and document blocks", i, j, k)
				return false
			}
			k++
			return true
		})
		if err != nil {
			return err
		}
		if n == 0 {
			w.out = append(w.out[:start], `""`...)
		} else {
			w.out = append(w.out, ']')
		}
	default:
		return invalid("messages.%d.content.%d.content: must be a string or an array of blocks", i, j)
	}
	w.out = append(w.out, `,"tool_call_id":`...)
	w.out = append(w.out, id.Raw...)
	w.out = append(w.out, '}')
	return nil
}

func (w *msgWriter) assistantMessage(i int, c gjson.Result) error {
	w.begin("assistant")
	if c.Type == gjson.String {
		w.out = append(w.out, c.Raw...)
		w.out = append(w.out, '}')
		return nil
	}
	// First pass: validate and count.
	var err error
	texts, tools, j := 0, 0, 0
	var only gjson.Result
	c.ForEach(func(_, b gjson.Result) bool {
		typ := blockType(b)
		switch typ {
		case "text":
			t := b.Get("text")
			if t.Type != gjson.String {
				err = invalid("messages.%d.content.%d.text: must be a string", i, j)
			} else if t.Str != "" {
				texts++
				only = t
			}
		case "tool_use":
			id, name, in := b.Get("id"), b.Get("name"), b.Get("input")
			switch {
			case !jsonw.IsNonEmptyString(id):
				err = invalid("messages.%d.content.%d.id: field required", i, j)
			case !jsonw.IsNonEmptyString(name):
				err = invalid("messages.%d.content.%d.name: field required", i, j)
			case !in.IsObject():
				err = invalid("messages.%d.content.%d.input: must be an object", i, j)
			}
			tools++
		case "thinking", "redacted_thinking":
			// Dropped.
		case "image", "document", "tool_result":
			err = invalid("messages.%d.content.%d: %s blocks are allowed in user messages only", i, j, typ)
		case "":
			err = invalid("messages.%d.content.%d: must be an object with a type", i, j)
		case "server_tool_use", "web_search_tool_result":
			err = unsupported("messages.%d.content.%d: %s blocks on a non-Anthropic backend", i, j, typ)
		default:
			err = invalid("messages.%d.content.%d.type: %q is not a known content block type", i, j, typ)
		}
		j++
		return err == nil
	})
	if err != nil {
		return err
	}
	switch {
	case texts == 1:
		w.out = append(w.out, only.Raw...)
	case texts > 1:
		w.out = append(w.out, '[')
		n := 0
		c.ForEach(func(_, b gjson.Result) bool {
			if t := b.Get("text"); blockType(b) == "text" && t.Str != "" {
				if n > 0 {
					w.out = append(w.out, ',')
				}
				n++
				w.out = append(w.out, `{"type":"text","text":`...)
				w.out = append(w.out, t.Raw...)
				w.out = append(w.out, '}')
			}
			return true
		})
		w.out = append(w.out, ']')
	case tools > 0:
		w.out = append(w.out, "null"...)
	default:
		w.out = append(w.out, `""`...)
	}
	if tools > 0 {
		w.out = append(w.out, `,"tool_calls":[`...)
		n := 0
		c.ForEach(func(_, b gjson.Result) bool {
			if blockType(b) != "tool_use" {
				return true
			}
			if n > 0 {
				w.out = append(w.out, ',')
			}
			n++
			w.out = append(w.out, `{"id":`...)
			w.out = append(w.out, b.Get("id").Raw...)
			w.out = append(w.out, `,"type":"function","function":{"name":`...)
			w.out = append(w.out, b.Get("name").Raw...)
			w.out = append(w.out, `,"arguments":`...)
			w.out = jsonw.AppendCompactAsString(w.out, b.Get("input").Raw)
			w.out = append(w.out, "}}"...)
			return true
		})
		w.out = append(w.out, ']')
	}
	w.out = append(w.out, '}')
	return nil
}

// appendStop writes stop_sequences as stop.
func appendStop(out []byte, stop gjson.Result) ([]byte, error) {
	if !jsonw.Present(stop) {
		return out, nil
	}
	if !stop.IsArray() {
		return out, invalid("stop_sequences: must be an array of strings")
	}
	start := len(out)
	out = append(out, `,"stop":[`...)
	n := 0
	var err error
	stop.ForEach(func(_, s gjson.Result) bool {
		if s.Type != gjson.String {
			err = invalid("stop_sequences.%d: must be a string", n)
			return false
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, s.Raw...)
		return true
	})
	if err != nil {
		return out, err
	}
	if n == 0 {
		return out[:start], nil
	}
	return append(out, ']'), nil
}

// appendTools writes tools, tool_choice and parallel_tool_calls.
func appendTools(out []byte, tools, choice gjson.Result) ([]byte, error) {
	n := 0
	if jsonw.Present(tools) {
		if !tools.IsArray() {
			return out, invalid("tools: must be an array")
		}
		start := len(out)
		out = append(out, `,"tools":[`...)
		var err error
		tools.ForEach(func(_, t gjson.Result) bool {
			if !t.IsObject() {
				err = invalid("tools.%d: must be an object", n)
				return false
			}
			if typ := t.Get("type"); jsonw.Present(typ) && typ.Str != "custom" {
				err = unsupported("tools.%d.type: %q (Anthropic server and client tools) on a non-Anthropic backend", n, typ.String())
				return false
			}
			name, desc, schema := t.Get("name"), t.Get("description"), t.Get("input_schema")
			switch {
			case !jsonw.IsNonEmptyString(name):
				err = invalid("tools.%d.name: field required", n)
			case jsonw.Present(desc) && desc.Type != gjson.String:
				err = invalid("tools.%d.description: must be a string", n)
			case !schema.IsObject():
				err = invalid("tools.%d.input_schema: field required, an object", n)
			}
			if err != nil {
				return false
			}
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = append(out, `{"type":"function","function":{"name":`...)
			out = append(out, name.Raw...)
			if jsonw.IsNonEmptyString(desc) {
				out = append(out, `,"description":`...)
				out = append(out, desc.Raw...)
			}
			out = append(out, `,"parameters":`...)
			out = append(out, schema.Raw...)
			out = append(out, "}}"...)
			return true
		})
		if err != nil {
			return out, err
		}
		if n == 0 {
			out = out[:start]
		} else {
			out = append(out, ']')
		}
	}
	if !jsonw.Present(choice) {
		return out, nil
	}
	if !choice.IsObject() {
		return out, invalid("tool_choice: must be an object")
	}
	dp := choice.Get("disable_parallel_tool_use")
	if jsonw.Present(dp) && dp.Type != gjson.True && dp.Type != gjson.False {
		return out, invalid("tool_choice.disable_parallel_tool_use: must be a boolean")
	}
	typ := choice.Get("type").Str
	switch typ {
	case "none":
		if n > 0 {
			out = append(out, `,"tool_choice":"none"`...)
		}
		return out, nil
	case "auto", "any", "tool":
	default:
		return out, invalid("tool_choice.type: %q is not one of auto, any, tool, none", typ)
	}
	if n == 0 {
		if typ == "auto" {
			return out, nil
		}
		return out, invalid("tool_choice: type %q requires tools", typ)
	}
	switch typ {
	case "auto":
		out = append(out, `,"tool_choice":"auto"`...)
	case "any":
		out = append(out, `,"tool_choice":"required"`...)
	case "tool":
		name := choice.Get("name")
		if !jsonw.IsNonEmptyString(name) {
			return out, invalid("tool_choice.name: field required")
		}
		out = append(out, `,"tool_choice":{"type":"function","function":{"name":`...)
		out = append(out, name.Raw...)
		out = append(out, "}}"...)
	}
	if dp.Type == gjson.True {
		out = append(out, `,"parallel_tool_calls":false`...)
	}
	return out, nil
}
