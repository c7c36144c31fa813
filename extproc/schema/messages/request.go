package messages

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

// chatFields are the top-level request fields Weir reads.
type chatFields struct {
	model, messages, tools, toolChoice, parallel      gjson.Result
	maxTokens, maxCompletion, stop, temperature, topP gjson.Result
	user, stream, n                                   gjson.Result
}

// DefaultMaxTokens is sent when the client sets no token limit: Anthropic
// requires one.
const DefaultMaxTokens = 4096

// TranslateChat is the Messages API body (POST /v1/messages) for an OpenAI
// chat completion request, model and stream included.
func TranslateChat(req *provider.Request) ([]byte, error) {
	js := jsonw.View(req.Body)
	if !gjson.Valid(js) {
		return nil, invalid("body is not valid JSON")
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, invalid("body must be a JSON object")
	}
	var f chatFields
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			f.model = v
		case "messages":
			f.messages = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
		case "parallel_tool_calls":
			f.parallel = v
		case "max_tokens":
			f.maxTokens = v
		case "max_completion_tokens":
			f.maxCompletion = v
		case "stop":
			f.stop = v
		case "temperature":
			f.temperature = v
		case "top_p":
			f.topP = v
		case "user":
			f.user = v
		case "stream":
			f.stream = v
		case "n":
			f.n = v
		}
		return true
	})

	model := req.Model
	if model == "" {
		if f.model.Type != gjson.String || f.model.Str == "" {
			return nil, invalid("model is required")
		}
		model = f.model.Str
	}
	if jsonw.Present(f.n) {
		if f.n.Type != gjson.Number || f.n.Num != math.Trunc(f.n.Num) || f.n.Num < 1 {
			return nil, invalid("n must be a positive integer")
		}
		if f.n.Num > 1 {
			return nil, unsupported("n > 1 (Anthropic returns one choice)")
		}
	}
	maxTokens := int64(DefaultMaxTokens)
	mt, mtName := f.maxCompletion, "max_completion_tokens"
	if !jsonw.Present(mt) {
		mt, mtName = f.maxTokens, "max_tokens"
	}
	if jsonw.Present(mt) {
		if mt.Type != gjson.Number || mt.Num != math.Trunc(mt.Num) || mt.Num < 1 || mt.Num > math.MaxInt32 {
			return nil, invalid("%s must be a positive integer", mtName)
		}
		maxTokens = int64(mt.Num)
	}
	if !jsonw.Present(f.messages) {
		return nil, invalid("messages is required")
	}
	if !f.messages.IsArray() {
		return nil, invalid("messages must be an array")
	}

	out := make([]byte, 0, len(req.Body)+256)
	out = append(out, `{"model":`...)
	out = jsonw.AppendString(out, model)
	out = append(out, `,"max_tokens":`...)
	out = strconv.AppendInt(out, maxTokens, 10)

	w := msgWriter{out: append(out, `,"messages":[`...), turns: jsonw.Turns{Key: "content"}}
	w.sys = w.sysBuf[:0]
	if err := w.messages(f.messages); err != nil {
		return nil, err
	}
	if w.turns.Count() == 0 {
		return nil, invalid("messages must contain at least one non-empty user or assistant message")
	}
	out = append(w.out, ']')
	out = appendSystem(out, w.sys)

	var err error
	if out, err = appendTools(out, f.tools, f.toolChoice, f.parallel); err != nil {
		return nil, err
	}
	if out, err = appendStop(out, f.stop); err != nil {
		return nil, err
	}
	if jsonw.Present(f.temperature) {
		if f.temperature.Type != gjson.Number {
			return nil, invalid("temperature must be a number")
		}
		// Anthropic's range is 0..1; OpenAI's 0..2. Clamp, do not scale.
		out = append(out, `,"temperature":`...)
		out = strconv.AppendFloat(out, min(max(f.temperature.Num, 0), 1), 'g', -1, 64)
	}
	if jsonw.Present(f.topP) {
		if f.topP.Type != gjson.Number {
			return nil, invalid("top_p must be a number")
		}
		out = append(out, `,"top_p":`...)
		out = append(out, f.topP.Raw...)
	}
	if jsonw.Present(f.user) {
		if f.user.Type != gjson.String {
			return nil, invalid("user must be a string")
		}
		if f.user.Str != "" {
			out = append(out, `,"metadata":{"user_id":`...)
			out = jsonw.AppendRawString(out, f.user)
			out = append(out, '}')
		}
	}
	if jsonw.Present(f.stream) && f.stream.Type != gjson.True && f.stream.Type != gjson.False {
		return nil, invalid("stream must be a boolean")
	}
	if req.Stream || f.stream.Type == gjson.True {
		out = append(out, `,"stream":true`...)
	}
	return append(out, '}'), nil
}

// msgWriter builds the messages array, merging consecutive messages of the
// same Anthropic role (Anthropic requires alternation) and collecting
// system messages for the top-level system field.
type msgWriter struct {
	out    []byte
	turns  jsonw.Turns // Anthropic rejects empty content and repeated roles
	sys    []gjson.Result
	sysBuf [4]gjson.Result
}

type msgFields struct {
	role, content, toolCalls, toolCallID gjson.Result
}

func (w *msgWriter) messages(msgs gjson.Result) error {
	var err error
	i := 0
	msgs.ForEach(func(_, m gjson.Result) bool {
		err = w.message(i, m)
		i++
		return err == nil
	})
	if err != nil {
		return err
	}
	w.close()
	return nil
}

func (w *msgWriter) message(i int, m gjson.Result) error {
	if !m.IsObject() {
		return invalid("messages[%d] must be an object", i)
	}
	var f msgFields
	m.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "role":
			f.role = v
		case "content":
			f.content = v
		case "tool_calls":
			f.toolCalls = v
		case "tool_call_id":
			f.toolCallID = v
		}
		return true
	})
	if f.role.Type != gjson.String {
		return invalid("messages[%d].role is required", i)
	}
	switch f.role.Str {
	case "system", "developer":
		if err := checkSystem(i, f.content); err != nil {
			return err
		}
		w.sys = append(w.sys, f.content)
	case "user":
		w.open("user")
		return w.content(i, f.content, true)
	case "assistant":
		w.open("assistant")
		if err := w.content(i, f.content, false); err != nil {
			return err
		}
		return w.toolCalls(i, f.toolCalls)
	case "tool":
		w.open("user")
		return w.toolResult(i, f.toolCallID, f.content)
	case "function":
		return unsupported("messages[%d]: the deprecated function role (use tool)", i)
	default:
		return invalid("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, f.role.Str)
	}
	return nil
}

// checkSystem validates system content: a string or an array of text parts.
func checkSystem(i int, c gjson.Result) error {
	switch {
	case c.Type == gjson.String:
		return nil
	case c.IsArray():
		var err error
		j := 0
		c.ForEach(func(_, p gjson.Result) bool {
			if p.Get("type").Str != "text" || p.Get("text").Type != gjson.String {
				err = invalid("messages[%d].content[%d]: system content parts must be text", i, j)
			}
			j++
			return err == nil
		})
		return err
	}
	return invalid("messages[%d].content must be a string or an array of text parts", i)
}

// appendSystem writes the system field: a string for one plain system
// message, otherwise an array of text blocks.
func appendSystem(out []byte, sys []gjson.Result) []byte {
	if len(sys) == 0 {
		return out
	}
	if len(sys) == 1 && sys[0].Type == gjson.String {
		if sys[0].Str == "" {
			return out
		}
		out = append(out, `,"system":`...)
		return jsonw.AppendRawString(out, sys[0])
	}
	start := len(out)
	out = append(out, `,"system":[`...)
	n := 0
	text := func(s gjson.Result) {
		if s.Type != gjson.String || s.Str == "" {
			return
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"type":"text","text":`...)
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
	return append(out, ']')
}

// content writes a user or assistant message's content as blocks.
func (w *msgWriter) content(i int, c gjson.Result, user bool) error {
	switch {
	case !jsonw.Present(c):
		return nil
	case c.Type == gjson.String:
		if c.Str != "" {
			w.block()
			w.out = append(w.out, `{"type":"text","text":`...)
			w.out = append(w.out, c.Raw...)
			w.out = append(w.out, '}')
		}
		return nil
	case c.IsArray():
		var err error
		j := 0
		c.ForEach(func(_, p gjson.Result) bool {
			err = w.part(i, j, p, user)
			j++
			return err == nil
		})
		return err
	}
	return invalid("messages[%d].content must be a string, an array of parts or null", i)
}

// part writes one content part.
func (w *msgWriter) part(i, j int, p gjson.Result, user bool) error {
	if !p.IsObject() {
		return invalid("messages[%d].content[%d] must be an object", i, j)
	}
	typ := p.Get("type")
	switch typ.Str {
	case "text", "refusal":
		s := p.Get(typ.Str)
		if s.Type != gjson.String {
			return invalid("messages[%d].content[%d].%s must be a string", i, j, typ.Str)
		}
		if s.Str != "" {
			w.block()
			w.out = append(w.out, `{"type":"text","text":`...)
			w.out = append(w.out, s.Raw...)
			w.out = append(w.out, '}')
		}
		return nil
	case "image_url":
		if !user {
			return invalid("messages[%d].content[%d]: images are allowed in user and tool messages only", i, j)
		}
		u := p.Get("image_url")
		if u.IsObject() {
			u = u.Get("url")
		}
		if u.Type != gjson.String {
			return invalid("messages[%d].content[%d].image_url.url must be a string", i, j)
		}
		w.block()
		var bad string
		if w.out, bad = appendImage(w.out, u.Str); bad != "" {
			return invalid("messages[%d].content[%d].image_url.url: %s", i, j, bad)
		}
		return nil
	case "file":
		if !user {
			return invalid("messages[%d].content[%d]: files are allowed in user messages only", i, j)
		}
		d := p.Get("file.file_data")
		if d.Type != gjson.String {
			return unsupported("messages[%d].content[%d]: file parts without inline file_data", i, j)
		}
		media, data, ok := ParseDataURL(d.Str)
		if !ok || media != "application/pdf" {
			return unsupported("messages[%d].content[%d].file.file_data: only base64 data: URLs of PDF documents", i, j)
		}
		w.block()
		w.out = append(w.out, `{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":`...)
		w.out = jsonw.AppendString(w.out, data)
		w.out = append(w.out, `}}`...)
		return nil
	case "input_audio":
		return unsupported("messages[%d].content[%d]: audio input", i, j)
	}
	return invalid("messages[%d].content[%d].type %q is not a known content part type", i, j, typ.Str)
}

// ParseDataURL splits "data:<media>[;params];base64,<data>".
func ParseDataURL(u string) (media, data string, ok bool) {
	if len(u) < 5 || !strings.EqualFold(u[:5], "data:") {
		return "", "", false
	}
	rest := u[5:]
	comma := strings.IndexByte(rest, ',')
	if comma < 0 {
		return "", "", false
	}
	meta, data := rest[:comma], rest[comma+1:]
	if len(meta) < 7 || !strings.EqualFold(meta[len(meta)-7:], ";base64") {
		return "", "", false
	}
	media = meta[:len(meta)-7]
	if k := strings.IndexByte(media, ';'); k >= 0 {
		media = media[:k]
	}
	if media == "" || data == "" {
		return "", "", false
	}
	return strings.ToLower(media), data, true
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// appendImage writes an image block for a data: or http(s) URL, or returns
// why the URL is not usable.
func appendImage(out []byte, u string) ([]byte, string) {
	if hasPrefixFold(u, "data:") {
		media, data, ok := ParseDataURL(u)
		if !ok {
			return out, "a data: URL must be data:<media type>;base64,<data>"
		}
		out = append(out, `{"type":"image","source":{"type":"base64","media_type":`...)
		out = jsonw.AppendString(out, media)
		out = append(out, `,"data":`...)
		out = jsonw.AppendString(out, data)
		return append(out, `}}`...), ""
	}
	if hasPrefixFold(u, "https://") || hasPrefixFold(u, "http://") {
		out = append(out, `{"type":"image","source":{"type":"url","url":`...)
		out = jsonw.AppendString(out, u)
		return append(out, `}}`...), ""
	}
	return out, "image URLs must be http(s) or base64 data: URLs"
}

// toolCalls writes an assistant's tool_calls as tool_use blocks.
func (w *msgWriter) toolCalls(i int, calls gjson.Result) error {
	if !jsonw.Present(calls) {
		return nil
	}
	if !calls.IsArray() {
		return invalid("messages[%d].tool_calls must be an array", i)
	}
	var err error
	j := 0
	calls.ForEach(func(_, c gjson.Result) bool {
		err = w.toolCall(i, j, c)
		j++
		return err == nil
	})
	return err
}

func (w *msgWriter) toolCall(i, j int, c gjson.Result) error {
	if !c.IsObject() {
		return invalid("messages[%d].tool_calls[%d] must be an object", i, j)
	}
	if typ := c.Get("type"); jsonw.Present(typ) && typ.Str != "function" {
		return unsupported("messages[%d].tool_calls[%d].type %q", i, j, typ.String())
	}
	id, name, args := c.Get("id"), c.Get("function.name"), c.Get("function.arguments")
	if id.Type != gjson.String || id.Str == "" {
		return invalid("messages[%d].tool_calls[%d].id is required", i, j)
	}
	if name.Type != gjson.String || name.Str == "" {
		return invalid("messages[%d].tool_calls[%d].function.name is required", i, j)
	}
	input := "{}"
	switch {
	case !jsonw.Present(args):
	case args.Type == gjson.String:
		if s := strings.TrimSpace(args.Str); s != "" {
			if !gjson.Valid(s) || s[0] != '{' {
				return invalid("messages[%d].tool_calls[%d].function.arguments must be a JSON object", i, j)
			}
			input = s
		}
	default:
		return invalid("messages[%d].tool_calls[%d].function.arguments must be a string", i, j)
	}
	w.block()
	w.out = append(w.out, `{"type":"tool_use","id":`...)
	w.out = append(w.out, id.Raw...)
	w.out = append(w.out, `,"name":`...)
	w.out = append(w.out, name.Raw...)
	w.out = append(w.out, `,"input":`...)
	w.out = append(w.out, input...)
	w.out = append(w.out, '}')
	return nil
}

// toolResult writes a tool message as a tool_result block.
func (w *msgWriter) toolResult(i int, id, c gjson.Result) error {
	if id.Type != gjson.String || id.Str == "" {
		return invalid("messages[%d].tool_call_id is required", i)
	}
	w.block()
	w.out = append(w.out, `{"type":"tool_result","tool_use_id":`...)
	w.out = append(w.out, id.Raw...)
	switch {
	case !jsonw.Present(c):
	case c.Type == gjson.String:
		if c.Str != "" {
			w.out = append(w.out, `,"content":`...)
			w.out = append(w.out, c.Raw...)
		}
	case c.IsArray():
		// Parts become the result's own blocks: write them through a
		// nested writer sharing the buffer.
		w.out = append(w.out, `,"content":[`...)
		start := len(w.out)
		inner := msgWriter{out: w.out}
		var err error
		j := 0
		c.ForEach(func(_, p gjson.Result) bool {
			err = inner.part(i, j, p, true)
			j++
			return err == nil
		})
		if err != nil {
			return err
		}
		w.out = inner.out
		if len(w.out) == start { // no non-empty parts
			w.out = w.out[:start-len(`,"content":[`)]
		} else {
			w.out = append(w.out, ']')
		}
	default:
		return invalid("messages[%d].content must be a string or an array of parts", i)
	}
	w.out = append(w.out, '}')
	return nil
}

// appendTools writes tools and tool_choice.
func appendTools(out []byte, tools, choice, parallel gjson.Result) ([]byte, error) {
	if jsonw.Present(parallel) && parallel.Type != gjson.True && parallel.Type != gjson.False {
		return out, invalid("parallel_tool_calls must be a boolean")
	}
	if !jsonw.Present(tools) {
		if jsonw.Present(choice) && choice.Type == gjson.String && (choice.Str == "none" || choice.Str == "auto") {
			return out, nil
		}
		if jsonw.Present(choice) {
			return out, invalid("tool_choice requires tools")
		}
		return out, nil
	}
	if !tools.IsArray() {
		return out, invalid("tools must be an array")
	}
	start := len(out)
	out = append(out, `,"tools":[`...)
	n := 0
	var err error
	tools.ForEach(func(_, t gjson.Result) bool {
		if !t.IsObject() {
			err = invalid("tools[%d] must be an object", n)
			return false
		}
		if typ := t.Get("type"); jsonw.Present(typ) && typ.Str != "function" {
			err = unsupported("tools[%d].type %q (only function tools)", n, typ.String())
			return false
		}
		fn := t.Get("function")
		name, desc, params := fn.Get("name"), fn.Get("description"), fn.Get("parameters")
		if name.Type != gjson.String || name.Str == "" {
			err = invalid("tools[%d].function.name is required", n)
			return false
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"name":`...)
		out = append(out, name.Raw...)
		if jsonw.Present(desc) {
			if desc.Type != gjson.String {
				err = invalid("tools[%d].function.description must be a string", n)
				return false
			}
			if desc.Str != "" {
				out = append(out, `,"description":`...)
				out = append(out, desc.Raw...)
			}
		}
		out = append(out, `,"input_schema":`...)
		switch {
		case !jsonw.Present(params):
			out = append(out, `{"type":"object","properties":{}}`...)
		case params.IsObject():
			out = append(out, params.Raw...)
		default:
			err = invalid("tools[%d].function.parameters must be an object", n)
			return false
		}
		out = append(out, '}')
		n++
		return true
	})
	if err != nil {
		return out, err
	}
	if n == 0 {
		return out[:start], nil
	}
	out = append(out, ']')

	disableParallel := parallel.Type == gjson.False
	switch {
	case !jsonw.Present(choice):
		if disableParallel {
			out = append(out, `,"tool_choice":{"type":"auto","disable_parallel_tool_use":true}`...)
		}
		return out, nil
	case choice.Type == gjson.String:
		switch choice.Str {
		case "auto":
			out = append(out, `,"tool_choice":{"type":"auto"`...)
		case "required":
			out = append(out, `,"tool_choice":{"type":"any"`...)
		case "none":
			return append(out, `,"tool_choice":{"type":"none"}`...), nil
		default:
			return out, invalid("tool_choice %q is not one of auto, required, none", choice.Str)
		}
	case choice.IsObject():
		if typ := choice.Get("type"); typ.Str != "function" {
			return out, unsupported("tool_choice type %q", typ.String())
		}
		name := choice.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return out, invalid("tool_choice.function.name is required")
		}
		out = append(out, `,"tool_choice":{"type":"tool","name":`...)
		out = append(out, name.Raw...)
	default:
		return out, invalid("tool_choice must be a string or an object")
	}
	if disableParallel {
		out = append(out, `,"disable_parallel_tool_use":true`...)
	}
	return append(out, '}'), nil
}

// appendStop writes stop as stop_sequences.
func appendStop(out []byte, stop gjson.Result) ([]byte, error) {
	switch {
	case !jsonw.Present(stop):
		return out, nil
	case stop.Type == gjson.String:
		if stop.Str == "" {
			return out, nil
		}
		out = append(out, `,"stop_sequences":[`...)
		out = append(out, stop.Raw...)
		return append(out, ']'), nil
	case stop.IsArray():
		start := len(out)
		out = append(out, `,"stop_sequences":[`...)
		n := 0
		var err error
		stop.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = invalid("stop must be a string or an array of strings")
				return false
			}
			if s.Str == "" {
				return true
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, s.Raw...)
			n++
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
	return out, invalid("stop must be a string or an array of strings")
}

func (w *msgWriter) open(role string) { w.out = w.turns.Open(w.out, role) }
func (w *msgWriter) block()           { w.out = w.turns.Item(w.out) }
func (w *msgWriter) close()           { w.out = w.turns.Close(w.out) }
