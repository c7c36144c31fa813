package messages

import (
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// DefaultMaxTokens is sent when the client sets no token limit: Anthropic
// requires one.
const DefaultMaxTokens = 4096

// TranslateChat is the Messages API body (POST /v1/messages) for an OpenAI
// chat completion request, model and stream included.
func TranslateChat(req *provider.Request) ([]byte, error) {
	root, err := openai.ParseObject(req.Body)
	if err != nil {
		return nil, err
	}
	var f openai.Chat
	openai.ReadChat(root, &f)
	model := req.Model
	if model == "" {
		if f.Model.Type != gjson.String || f.Model.Str == "" {
			return nil, openai.Invalid("model is required")
		}
		model = f.Model.Str
	}
	if err := f.CheckN("Anthropic returns one choice"); err != nil {
		return nil, err
	}
	maxTokens, set, err := f.OutputLimit()
	if err != nil {
		return nil, err
	}
	if !set {
		maxTokens = DefaultMaxTokens
	}
	if err := f.CheckMessages(); err != nil {
		return nil, err
	}

	out := make([]byte, 0, len(req.Body)+256)
	out = append(out, `{"model":`...)
	out = jsonw.AppendString(out, model)
	out = append(out, `,"max_tokens":`...)
	out = strconv.AppendInt(out, maxTokens, 10)

	w := msgWriter{Conversation: openai.Conversation{Out: append(out, `,"messages":[`...), Turns: jsonw.Turns{Key: "content"}, AssistantRole: "assistant"}}
	w.Sys = w.sysBuf[:0]
	if err := openai.ReadMessages(f.Messages, &w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out = append(w.Out, ']')
	out = appendSystem(out, w.Sys)

	if out, err = appendTools(out, f.Tools, f.ToolChoice, f.Parallel); err != nil {
		return nil, err
	}
	if out, err = appendStop(out, f.Stop); err != nil {
		return nil, err
	}
	if jsonw.Present(f.Temperature) {
		if f.Temperature.Type != gjson.Number {
			return nil, openai.Invalid("temperature must be a number")
		}
		// Anthropic's range is 0..1; OpenAI's 0..2. Clamp, do not scale.
		out = append(out, `,"temperature":`...)
		out = strconv.AppendFloat(out, min(max(f.Temperature.Num, 0), 1), 'g', -1, 64)
	}
	if jsonw.Present(f.TopP) {
		if f.TopP.Type != gjson.Number {
			return nil, openai.Invalid("top_p must be a number")
		}
		out = append(out, `,"top_p":`...)
		out = append(out, f.TopP.Raw...)
	}
	if jsonw.Present(f.User) {
		if f.User.Type != gjson.String {
			return nil, openai.Invalid("user must be a string")
		}
		if f.User.Str != "" {
			out = append(out, `,"metadata":{"user_id":`...)
			out = jsonw.AppendRawString(out, f.User)
			out = append(out, '}')
		}
	}
	if err := f.CheckStream(); err != nil {
		return nil, err
	}
	if req.Stream || f.Stream.Type == gjson.True {
		out = append(out, `,"stream":true`...)
	}
	return append(out, '}'), nil
}

// msgWriter builds the messages array from the OpenAI reader's visits,
// merging consecutive messages of the same Anthropic role (Anthropic
// requires alternation) and collecting system messages for the top-level
// system field.
type msgWriter struct {
	openai.Conversation // Out, Turns, Sys
	// sysBuf is Sys's first backing array: the writer is on the heap
	// anyway (the reader holds it as an interface). Three keep the writer
	// in the 384-byte size class.
	sysBuf [3]gjson.Result
}

func (w *msgWriter) Text(s gjson.Result) {
	w.Item()
	w.Out = append(w.Out, `{"type":"text","text":`...)
	w.Out = append(w.Out, s.Raw...)
	w.Out = append(w.Out, '}')
}

func (w *msgWriter) Image(i, j int, u string, user bool) error {
	if !user {
		return openai.Invalid("messages[%d].content[%d]: images are allowed in user and tool messages only", i, j)
	}
	w.Item()
	var bad string
	if w.Out, bad = appendImage(w.Out, u); bad != "" {
		return openai.Invalid("messages[%d].content[%d].image_url.url: %s", i, j, bad)
	}
	return nil
}

func (w *msgWriter) File(i, j int, d string) error {
	media, data, ok := openai.ParseDataURL(d)
	if !ok || media != "application/pdf" {
		return openai.Unsupported("messages[%d].content[%d].file.file_data: only base64 data: URLs of PDF documents", i, j)
	}
	w.Item()
	w.Out = append(w.Out, `{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":`...)
	w.Out = jsonw.AppendString(w.Out, data)
	w.Out = append(w.Out, `}}`...)
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
	return openai.AppendSystem(out, sys, `,"system":[`, `{"type":"text","text":`, `]`)
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
	w.Item()
	w.Out = append(w.Out, `{"type":"tool_use","id":`...)
	w.Out = append(w.Out, id.Raw...)
	w.Out = append(w.Out, `,"name":`...)
	w.Out = append(w.Out, name.Raw...)
	w.Out = append(w.Out, `,"input":`...)
	w.Out = append(w.Out, input...)
	w.Out = append(w.Out, '}')
}

// ToolResult writes a tool message as a tool_result block.
func (w *msgWriter) ToolResult(i int, id, c gjson.Result) error {
	w.Item()
	w.Out = append(w.Out, `{"type":"tool_result","tool_use_id":`...)
	w.Out = append(w.Out, id.Raw...)
	switch {
	case !jsonw.Present(c):
	case c.Type == gjson.String:
		if c.Str != "" {
			w.Out = append(w.Out, `,"content":`...)
			w.Out = append(w.Out, c.Raw...)
		}
	case c.IsArray():
		// Parts become the result's own blocks: w writes them with the
		// turn's block count set aside, as a list of their own.
		w.Out = append(w.Out, `,"content":[`...)
		start := len(w.Out)
		turn := w.Turns
		w.Turns = jsonw.Turns{}
		err := openai.Each(c, func(j int, p gjson.Result) error { return openai.ReadPart(w, i, j, p, true) })
		w.Turns = turn
		if err != nil {
			return err
		}
		if len(w.Out) == start { // no non-empty parts
			w.Out = w.Out[:start-len(`,"content":[`)]
		} else {
			w.Out = append(w.Out, ']')
		}
	default:
		return openai.Invalid("messages[%d].content must be a string or an array of parts", i)
	}
	w.Out = append(w.Out, '}')
	return nil
}

// appendTools writes tools and tool_choice.
func appendTools(out []byte, tools, choice, parallel gjson.Result) ([]byte, error) {
	if jsonw.Present(parallel) && parallel.Type != gjson.True && parallel.Type != gjson.False {
		return out, openai.Invalid("parallel_tool_calls must be a boolean")
	}
	if !jsonw.Present(tools) {
		return out, openai.CheckChoiceWithoutTools(choice)
	}
	start := len(out)
	out = append(out, `,"tools":[`...)
	err := openai.ReadTools(tools, func(n int, name, desc, params gjson.Result) {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"name":`...)
		out = append(out, name.Raw...)
		if desc.Str != "" {
			out = append(out, `,"description":`...)
			out = append(out, desc.Raw...)
		}
		out = append(out, `,"input_schema":`...)
		if jsonw.Present(params) {
			out = append(out, params.Raw...)
		} else {
			out = append(out, `{"type":"object","properties":{}}`...)
		}
		out = append(out, '}')
	})
	if err != nil {
		return out, err
	}
	if len(out) == start+len(`,"tools":[`) {
		return out[:start], nil
	}
	out = append(out, ']')

	disableParallel := parallel.Type == gjson.False
	mode, name, err := openai.ReadToolChoice(choice)
	switch {
	case err != nil:
		return out, err
	case mode == openai.ChoiceAbsent:
		if disableParallel {
			out = append(out, `,"tool_choice":{"type":"auto","disable_parallel_tool_use":true}`...)
		}
		return out, nil
	case mode == openai.ChoiceNone:
		return append(out, `,"tool_choice":{"type":"none"}`...), nil
	case mode == openai.ChoiceAuto:
		out = append(out, `,"tool_choice":{"type":"auto"`...)
	case mode == openai.ChoiceRequired:
		out = append(out, `,"tool_choice":{"type":"any"`...)
	default:
		out = append(out, `,"tool_choice":{"type":"tool","name":`...)
		out = append(out, name.Raw...)
	}
	if disableParallel {
		out = append(out, `,"disable_parallel_tool_use":true`...)
	}
	return append(out, '}'), nil
}

// appendStop writes stop as stop_sequences.
func appendStop(out []byte, stop gjson.Result) ([]byte, error) {
	start := len(out)
	out = append(out, `,"stop_sequences":[`...)
	n := 0
	err := openai.Stops(stop, func(s gjson.Result) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, s.Raw...)
	})
	if err != nil || n == 0 {
		return out[:start], err
	}
	return append(out, ']'), nil
}
