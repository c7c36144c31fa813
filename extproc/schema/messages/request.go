package messages

import (
	"math"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

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
		return nil, openai.Invalid("body is not valid JSON")
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, openai.Invalid("body must be a JSON object")
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
			return nil, openai.Invalid("model is required")
		}
		model = f.model.Str
	}
	if jsonw.Present(f.n) {
		if f.n.Type != gjson.Number || f.n.Num != math.Trunc(f.n.Num) || f.n.Num < 1 {
			return nil, openai.Invalid("n must be a positive integer")
		}
		if f.n.Num > 1 {
			return nil, openai.Unsupported("n > 1 (Anthropic returns one choice)")
		}
	}
	maxTokens := int64(DefaultMaxTokens)
	mt, mtName := f.maxCompletion, "max_completion_tokens"
	if !jsonw.Present(mt) {
		mt, mtName = f.maxTokens, "max_tokens"
	}
	if jsonw.Present(mt) {
		if mt.Type != gjson.Number || mt.Num != math.Trunc(mt.Num) || mt.Num < 1 || mt.Num > math.MaxInt32 {
			return nil, openai.Invalid("%s must be a positive integer", mtName)
		}
		maxTokens = int64(mt.Num)
	}
	if !jsonw.Present(f.messages) {
		return nil, openai.Invalid("messages is required")
	}
	if !f.messages.IsArray() {
		return nil, openai.Invalid("messages must be an array")
	}

	out := make([]byte, 0, len(req.Body)+256)
	out = append(out, `{"model":`...)
	out = jsonw.AppendString(out, model)
	out = append(out, `,"max_tokens":`...)
	out = strconv.AppendInt(out, maxTokens, 10)

	w := msgWriter{out: append(out, `,"messages":[`...), turns: jsonw.Turns{Key: "content"}}
	w.sys = w.sysBuf[:0]
	if err := openai.ReadMessages(f.messages, &w); err != nil {
		return nil, err
	}
	w.close()
	if w.turns.Count() == 0 {
		return nil, openai.Invalid("messages must contain at least one non-empty user or assistant message")
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
			return nil, openai.Invalid("temperature must be a number")
		}
		// Anthropic's range is 0..1; OpenAI's 0..2. Clamp, do not scale.
		out = append(out, `,"temperature":`...)
		out = strconv.AppendFloat(out, min(max(f.temperature.Num, 0), 1), 'g', -1, 64)
	}
	if jsonw.Present(f.topP) {
		if f.topP.Type != gjson.Number {
			return nil, openai.Invalid("top_p must be a number")
		}
		out = append(out, `,"top_p":`...)
		out = append(out, f.topP.Raw...)
	}
	if jsonw.Present(f.user) {
		if f.user.Type != gjson.String {
			return nil, openai.Invalid("user must be a string")
		}
		if f.user.Str != "" {
			out = append(out, `,"metadata":{"user_id":`...)
			out = jsonw.AppendRawString(out, f.user)
			out = append(out, '}')
		}
	}
	if jsonw.Present(f.stream) && f.stream.Type != gjson.True && f.stream.Type != gjson.False {
		return nil, openai.Invalid("stream must be a boolean")
	}
	if req.Stream || f.stream.Type == gjson.True {
		out = append(out, `,"stream":true`...)
	}
	return append(out, '}'), nil
}

// msgWriter builds the messages array from the OpenAI reader's visits,
// merging consecutive messages of the same Anthropic role (Anthropic
// requires alternation) and collecting system messages for the top-level
// system field.
type msgWriter struct {
	out    []byte
	turns  jsonw.Turns // Anthropic rejects empty content and repeated roles
	sys    []gjson.Result
	sysBuf [4]gjson.Result
}

func (w *msgWriter) System(c gjson.Result) { w.sys = append(w.sys, c) }

func (w *msgWriter) Turn(r openai.Role) {
	role := "user"
	if r == openai.Assistant {
		role = "assistant"
	}
	w.out = w.turns.Open(w.out, role)
}

func (w *msgWriter) Text(s gjson.Result) {
	w.block()
	w.out = append(w.out, `{"type":"text","text":`...)
	w.out = append(w.out, s.Raw...)
	w.out = append(w.out, '}')
}

func (w *msgWriter) Image(i, j int, u string, user bool) error {
	if !user {
		return openai.Invalid("messages[%d].content[%d]: images are allowed in user and tool messages only", i, j)
	}
	w.block()
	var bad string
	if w.out, bad = appendImage(w.out, u); bad != "" {
		return openai.Invalid("messages[%d].content[%d].image_url.url: %s", i, j, bad)
	}
	return nil
}

func (w *msgWriter) File(i, j int, d string) error {
	media, data, ok := openai.ParseDataURL(d)
	if !ok || media != "application/pdf" {
		return openai.Unsupported("messages[%d].content[%d].file.file_data: only base64 data: URLs of PDF documents", i, j)
	}
	w.block()
	w.out = append(w.out, `{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":`...)
	w.out = jsonw.AppendString(w.out, data)
	w.out = append(w.out, `}}`...)
	return nil
}

func (w *msgWriter) Audio(i, j int, _ gjson.Result, _ bool) error {
	return openai.Unsupported("messages[%d].content[%d]: audio input", i, j)
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
	openai.SystemTexts(sys, func(s gjson.Result) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"type":"text","text":`...)
		out = jsonw.AppendRawString(out, s)
		out = append(out, '}')
	})
	if n == 0 {
		return out[:start]
	}
	return append(out, ']')
}

// appendImage writes an image block for a data: or http(s) URL, or returns
// why the URL is not usable.
func appendImage(out []byte, u string) ([]byte, string) {
	if openai.HasPrefixFold(u, "data:") {
		media, data, ok := openai.ParseDataURL(u)
		if !ok {
			return out, "a data: URL must be data:<media type>;base64,<data>"
		}
		out = append(out, `{"type":"image","source":{"type":"base64","media_type":`...)
		out = jsonw.AppendString(out, media)
		out = append(out, `,"data":`...)
		out = jsonw.AppendString(out, data)
		return append(out, `}}`...), ""
	}
	if openai.HasPrefixFold(u, "https://") || openai.HasPrefixFold(u, "http://") {
		out = append(out, `{"type":"image","source":{"type":"url","url":`...)
		out = jsonw.AppendString(out, u)
		return append(out, `}}`...), ""
	}
	return out, "image URLs must be http(s) or base64 data: URLs"
}

// ToolCall writes an assistant's tool call as a tool_use block.
func (w *msgWriter) ToolCall(id, name gjson.Result, input string) {
	w.block()
	w.out = append(w.out, `{"type":"tool_use","id":`...)
	w.out = append(w.out, id.Raw...)
	w.out = append(w.out, `,"name":`...)
	w.out = append(w.out, name.Raw...)
	w.out = append(w.out, `,"input":`...)
	w.out = append(w.out, input...)
	w.out = append(w.out, '}')
}

// ToolResult writes a tool message as a tool_result block.
func (w *msgWriter) ToolResult(i int, id, c gjson.Result) error {
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
		// Parts become the result's own blocks: w writes them with the
		// turn's block count set aside, as a list of their own.
		w.out = append(w.out, `,"content":[`...)
		start := len(w.out)
		turn := w.turns
		w.turns = jsonw.Turns{}
		err := openai.Each(c, func(j int, p gjson.Result) error { return openai.ReadPart(w, i, j, p, true) })
		w.turns = turn
		if err != nil {
			return err
		}
		if len(w.out) == start { // no non-empty parts
			w.out = w.out[:start-len(`,"content":[`)]
		} else {
			w.out = append(w.out, ']')
		}
	default:
		return openai.Invalid("messages[%d].content must be a string or an array of parts", i)
	}
	w.out = append(w.out, '}')
	return nil
}

// appendTools writes tools and tool_choice.
func appendTools(out []byte, tools, choice, parallel gjson.Result) ([]byte, error) {
	if jsonw.Present(parallel) && parallel.Type != gjson.True && parallel.Type != gjson.False {
		return out, openai.Invalid("parallel_tool_calls must be a boolean")
	}
	if !jsonw.Present(tools) {
		if jsonw.Present(choice) && choice.Type == gjson.String && (choice.Str == "none" || choice.Str == "auto") {
			return out, nil
		}
		if jsonw.Present(choice) {
			return out, openai.Invalid("tool_choice requires tools")
		}
		return out, nil
	}
	if !tools.IsArray() {
		return out, openai.Invalid("tools must be an array")
	}
	start := len(out)
	out = append(out, `,"tools":[`...)
	n := 0
	var err error
	tools.ForEach(func(_, t gjson.Result) bool {
		if !t.IsObject() {
			err = openai.Invalid("tools[%d] must be an object", n)
			return false
		}
		if typ := t.Get("type"); jsonw.Present(typ) && typ.Str != "function" {
			err = openai.Unsupported("tools[%d].type %q (only function tools)", n, typ.String())
			return false
		}
		fn := t.Get("function")
		name, desc, params := fn.Get("name"), fn.Get("description"), fn.Get("parameters")
		if name.Type != gjson.String || name.Str == "" {
			err = openai.Invalid("tools[%d].function.name is required", n)
			return false
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"name":`...)
		out = append(out, name.Raw...)
		if jsonw.Present(desc) {
			if desc.Type != gjson.String {
				err = openai.Invalid("tools[%d].function.description must be a string", n)
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
			err = openai.Invalid("tools[%d].function.parameters must be an object", n)
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
			return out, openai.Invalid("tool_choice %q is not one of auto, required, none", choice.Str)
		}
	case choice.IsObject():
		if typ := choice.Get("type"); typ.Str != "function" {
			return out, openai.Unsupported("tool_choice type %q", typ.String())
		}
		name := choice.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return out, openai.Invalid("tool_choice.function.name is required")
		}
		out = append(out, `,"tool_choice":{"type":"tool","name":`...)
		out = append(out, name.Raw...)
	default:
		return out, openai.Invalid("tool_choice must be a string or an object")
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
				err = openai.Invalid("stop must be a string or an array of strings")
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
	return out, openai.Invalid("stop must be a string or an array of strings")
}

func (w *msgWriter) block() { w.out = w.turns.Item(w.out) }
func (w *msgWriter) close() { w.out = w.turns.Close(w.out) }
