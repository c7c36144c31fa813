package gemini

import (
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// SigSep separates an OpenAI tool call id from the Gemini thought signature
// carried with it.
const SigSep = "~sig~"

// TranslateChat is the generateContent body for an OpenAI chat request
// and whether the client asked for a stream (streamGenerateContent).
func TranslateChat(req *provider.Request) (body []byte, stream bool, err error) {
	root, err := openai.ParseObject(req.Body)
	if err != nil {
		return nil, false, err
	}
	return ChatBody(req, root)
}

// ChatBody is [TranslateChat] for a caller that has validated and parsed
// the body as root, a JSON object.
func ChatBody(req *provider.Request, root gjson.Result) ([]byte, bool, error) {
	stream := req.Stream || root.Get("stream").Type == gjson.True
	body, err := translateChat(root, len(req.Body))
	return body, stream, err
}

func translateChat(root gjson.Result, size int) ([]byte, error) {
	var f openai.Chat
	openai.ReadChat(root, &f)
	if jsonw.Present(f.N) {
		if !openai.IsPositiveInt(f.N) {
			return nil, openai.Invalid("n must be a positive integer")
		}
		if f.N.Num > 1 {
			return nil, openai.Unsupported("n > 1 (this translation returns one choice)")
		}
	}
	if err := f.CheckStream(); err != nil {
		return nil, err
	}
	if err := f.CheckMessages(); err != nil {
		return nil, err
	}
	w := contentWriter{Conversation: openai.Conversation{Out: make([]byte, 0, size+256), Turns: jsonw.Turns{Key: "parts"}, AssistantRole: "model"}}
	w.calls = w.callsBuf[:0]
	w.Out = append(w.Out, `{"contents":[`...)
	if err := openai.ReadMessages(f.Messages, &w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out := append(w.Out, ']')
	out = appendSystem(out, w.Sys)
	var err error
	if out, err = appendTools(out, f.Tools, f.ToolChoice); err != nil {
		return nil, err
	}
	if out, err = appendGenerationConfig(out, &f); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// callRef remembers an assistant tool call so that the tool message
// answering it can name the function.
type callRef struct{ id, name string }

// contentWriter builds the contents array from the OpenAI reader's
// visits, merging consecutive messages of the same Gemini role and
// collecting system messages.
type contentWriter struct {
	openai.Conversation // Out, Turns, Sys
	calls               []callRef
	// calls' first backing array: the writer is on the heap (the reader
	// holds it as an interface), so the first calls cost no allocation of
	// their own.
	callsBuf [2]callRef
}

func (w *contentWriter) Text(s gjson.Result) {
	w.Item()
	w.Out = append(w.Out, `{"text":`...)
	w.Out = append(w.Out, s.Raw...)
	w.Out = append(w.Out, '}')
}

// appendSystem writes systemInstruction with one text part per non-empty
// system text.
func appendSystem(out []byte, sys []gjson.Result) []byte {
	return openai.AppendSystem(out, sys, `,"systemInstruction":{"parts":[`, `{"text":`, `]}`)
}

func (w *contentWriter) Image(i, j int, u string, user bool) error {
	if !user {
		return openai.Invalid("messages[%d].content[%d]: images are allowed in user messages only", i, j)
	}
	switch {
	case openai.HasPrefixFold(u, "data:"):
		media, data, ok := openai.ParseDataURL(u)
		if !ok {
			return openai.Invalid("messages[%d].content[%d].image_url.url: a data: URL must be data:<media type>;base64,<data>", i, j)
		}
		w.Item()
		w.Out = appendInline(w.Out, media, data)
	case openai.HasPrefixFold(u, "https://") || openai.HasPrefixFold(u, "http://"):
		w.Item()
		w.Out = append(w.Out, `{"fileData":{"mimeType":"`...)
		w.Out = append(w.Out, guessMime(u)...)
		w.Out = append(w.Out, `","fileUri":`...)
		w.Out = jsonw.AppendString(w.Out, u)
		w.Out = append(w.Out, "}}"...)
	default:
		return openai.Invalid("messages[%d].content[%d].image_url.url: image URLs must be http(s) or base64 data: URLs", i, j)
	}
	return nil
}

func (w *contentWriter) Audio(i, j int, p gjson.Result, user bool) error {
	if !user {
		return openai.Invalid("messages[%d].content[%d]: audio is allowed in user messages only", i, j)
	}
	data, format := p.Get("input_audio.data"), p.Get("input_audio.format")
	if data.Type != gjson.String || data.Str == "" || format.Type != gjson.String || format.Str == "" {
		return openai.Invalid("messages[%d].content[%d].input_audio needs data and format", i, j)
	}
	w.Item()
	w.Out = appendInline(w.Out, "audio/"+strings.ToLower(format.Str), data.Str)
	return nil
}

func (w *contentWriter) File(i, j int, d string) error {
	media, data, ok := openai.ParseDataURL(d)
	if !ok {
		return openai.Unsupported("messages[%d].content[%d].file.file_data: only base64 data: URLs", i, j)
	}
	w.Item()
	w.Out = appendInline(w.Out, media, data)
	return nil
}

func appendInline(out []byte, media, data string) []byte {
	out = append(out, `{"inlineData":{"mimeType":`...)
	out = jsonw.AppendString(out, media)
	out = append(out, `,"data":`...)
	out = jsonw.AppendString(out, data)
	return append(out, "}}"...)
}

// guessMime guesses an http(s) URL's media type from its path's extension.
func guessMime(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	ext := u[strings.LastIndexByte(u, '.')+1:]
	switch strings.ToLower(ext) {
	case "png":
		return "image/png"
	case "webp":
		return "image/webp"
	case "gif":
		return "image/gif"
	case "heic":
		return "image/heic"
	case "heif":
		return "image/heif"
	case "pdf":
		return "application/pdf"
	}
	return "image/jpeg"
}

// ToolCall writes an assistant's tool call as a functionCall part, with
// the thought signature its id carries.
func (w *contentWriter) ToolCall(id, name gjson.Result, input string) {
	w.calls = append(w.calls, callRef{id: id.Str, name: name.Str})
	w.Item()
	w.Out = append(w.Out, `{"functionCall":{"name":`...)
	w.Out = append(w.Out, name.Raw...)
	w.Out = append(w.Out, `,"args":`...)
	w.Out = append(w.Out, input...)
	w.Out = append(w.Out, '}')
	if k := strings.Index(id.Str, SigSep); k >= 0 && k+len(SigSep) < len(id.Str) {
		w.Out = append(w.Out, `,"thoughtSignature":`...)
		w.Out = jsonw.AppendString(w.Out, id.Str[k+len(SigSep):])
	}
	w.Out = append(w.Out, '}')
}

// ToolResult writes a tool message as a functionResponse part named after
// the call it answers.
func (w *contentWriter) ToolResult(i int, id, c gjson.Result) error {
	name := ""
	for k := len(w.calls) - 1; k >= 0; k-- {
		if w.calls[k].id == id.Str {
			name = w.calls[k].name
			break
		}
	}
	if name == "" {
		return openai.Invalid("messages[%d].tool_call_id %q answers no earlier assistant tool call", i, id.Str)
	}
	w.Item()
	w.Out = append(w.Out, `{"functionResponse":{"name":`...)
	w.Out = jsonw.AppendString(w.Out, name)
	w.Out = append(w.Out, `,"response":`...)
	switch {
	case !jsonw.Present(c):
		w.Out = append(w.Out, `{"result":""}`...)
	case c.Type == gjson.String:
		if s := strings.TrimSpace(c.Str); len(s) > 0 && s[0] == '{' && gjson.Valid(s) {
			w.Out = append(w.Out, s...)
		} else {
			w.Out = append(w.Out, `{"result":`...)
			w.Out = append(w.Out, c.Raw...)
			w.Out = append(w.Out, '}')
		}
	case c.IsArray():
		w.Out = append(w.Out, `{"result":"`...)
		var err error
		j := 0
		c.ForEach(func(_, p gjson.Result) bool {
			t := p.Get("text")
			if p.Get("type").Str != "text" || t.Type != gjson.String {
				err = openai.Unsupported("messages[%d].content[%d]: tool results with non-text parts", i, j)
				return false
			}
			w.Out = append(w.Out, jsonw.RawStringBody(t)...)
			j++
			return true
		})
		if err != nil {
			return err
		}
		w.Out = append(w.Out, `"}`...)
	default:
		return openai.Invalid("messages[%d].content must be a string or an array of text parts", i)
	}
	w.Out = append(w.Out, "}}"...)
	return nil
}

// appendTools writes tools and toolConfig.
func appendTools(out []byte, tools, choice gjson.Result) ([]byte, error) {
	if !jsonw.Present(tools) {
		return out, openai.CheckChoiceWithoutTools(choice)
	}
	start := len(out)
	out = append(out, `,"tools":[{"functionDeclarations":[`...)
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
		if jsonw.Present(params) {
			out = append(out, `,"parametersJsonSchema":`...)
			out = append(out, params.Raw...)
		}
		out = append(out, '}')
	})
	if err != nil {
		return out, err
	}
	if len(out) == start+len(`,"tools":[{"functionDeclarations":[`) {
		return out[:start], nil
	}
	out = append(out, "]}]"...)
	mode, name, err := openai.ReadToolChoice(choice)
	switch {
	case err != nil:
		return out, err
	case mode == openai.ChoiceAuto:
		return append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}}`...), nil
	case mode == openai.ChoiceRequired:
		return append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"ANY"}}`...), nil
	case mode == openai.ChoiceNone:
		return append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}`...), nil
	case mode == openai.ChoiceFunction:
		out = append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":[`...)
		out = append(out, name.Raw...)
		return append(out, "]}}"...), nil
	}
	return out, nil
}

// appendGenerationConfig writes generationConfig, or nothing when no
// setting applies.
func appendGenerationConfig(out []byte, f *openai.Chat) ([]byte, error) {
	start := len(out)
	out = append(out, `,"generationConfig":{`...)
	n := 0
	field := func(name string) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, '"')
		out = append(out, name...)
		out = append(out, `":`...)
	}
	number := func(r gjson.Result, oaName, name string) error {
		if !jsonw.Present(r) {
			return nil
		}
		if r.Type != gjson.Number {
			return openai.Invalid("%s must be a number", oaName)
		}
		field(name)
		out = append(out, r.Raw...)
		return nil
	}
	if err := number(f.Temperature, "temperature", "temperature"); err != nil {
		return out, err
	}
	if err := number(f.TopP, "top_p", "topP"); err != nil {
		return out, err
	}
	if err := number(f.PresencePenalty, "presence_penalty", "presencePenalty"); err != nil {
		return out, err
	}
	if err := number(f.FrequencyPenalty, "frequency_penalty", "frequencyPenalty"); err != nil {
		return out, err
	}
	if jsonw.Present(f.Seed) {
		if f.Seed.Type != gjson.Number || f.Seed.Num != math.Trunc(f.Seed.Num) || math.Abs(f.Seed.Num) > math.MaxInt32 {
			return out, openai.Invalid("seed must be an integer")
		}
		field("seed")
		out = strconv.AppendInt(out, int64(f.Seed.Num), 10)
	}
	mt, set, err := f.OutputLimit()
	if err != nil {
		return out, err
	}
	if set {
		field("maxOutputTokens")
		out = strconv.AppendInt(out, mt, 10)
	}
	k := 0
	err = openai.Stops(f.Stop, func(s gjson.Result) {
		if k == 0 {
			field("stopSequences")
			out = append(out, '[')
		} else {
			out = append(out, ',')
		}
		k++
		out = append(out, s.Raw...)
	})
	if err != nil {
		return out, err
	}
	if k > 0 {
		out = append(out, ']')
	}
	if jsonw.Present(f.ResponseFormat) {
		if !f.ResponseFormat.IsObject() {
			return out, openai.Invalid("response_format must be an object")
		}
		switch typ := f.ResponseFormat.Get("type").Str; typ {
		case "text":
		case "json_object":
			field("responseMimeType")
			out = append(out, `"application/json"`...)
		case "json_schema":
			schema := f.ResponseFormat.Get("json_schema.schema")
			if !schema.IsObject() {
				return out, openai.Invalid("response_format.json_schema.schema must be an object")
			}
			field("responseMimeType")
			out = append(out, `"application/json"`...)
			field("responseJsonSchema")
			out = append(out, schema.Raw...)
		default:
			return out, openai.Invalid("response_format.type %q is not one of text, json_object, json_schema", typ)
		}
	}
	if n == 0 {
		return out[:start], nil
	}
	return append(out, '}'), nil
}

// EmbeddingsBody builds embedContent for a string input and
// batchEmbedContents for an array of strings, and names the operation.
// root is the validated and parsed OpenAI embeddings request.
func EmbeddingsBody(root gjson.Result, model string) ([]byte, string, error) {
	input, dims, format := root.Get("input"), root.Get("dimensions"), root.Get("encoding_format")
	if jsonw.Present(format) {
		switch format.Str {
		case "float":
		case "base64":
			return nil, "", openai.Unsupported("encoding_format base64 (use float)")
		default:
			return nil, "", openai.Invalid("encoding_format must be float or base64")
		}
	}
	if jsonw.Present(dims) && !openai.IsPositiveInt(dims) {
		return nil, "", openai.Invalid("dimensions must be a positive integer")
	}
	content := func(out []byte, s gjson.Result) []byte {
		out = append(out, `"content":{"parts":[{"text":`...)
		out = append(out, s.Raw...)
		out = append(out, `}]}`...)
		if jsonw.Present(dims) {
			out = append(out, `,"outputDimensionality":`...)
			out = strconv.AppendInt(out, int64(dims.Num), 10)
		}
		return out
	}
	switch {
	case input.Type == gjson.String:
		out := make([]byte, 0, len(input.Raw)+64)
		out = append(out, '{')
		out = content(out, input)
		return append(out, '}'), "embedContent", nil
	case input.IsArray():
		out := make([]byte, 0, len(input.Raw)*2+64)
		out = append(out, `{"requests":[`...)
		n := 0
		var err error
		input.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = openai.Unsupported("input: only strings and arrays of strings (no token arrays)")
				return false
			}
			if n > 0 {
				out = append(out, ',')
			}
			n++
			out = append(out, `{"model":`...)
			out = jsonw.AppendString(out, "models/"+model)
			out = append(out, ',')
			out = content(out, s)
			out = append(out, '}')
			return true
		})
		if err != nil {
			return nil, "", err
		}
		if n == 0 {
			return nil, "", openai.Invalid("input must not be empty")
		}
		return append(out, "]}"...), "batchEmbedContents", nil
	case !jsonw.Present(input):
		return nil, "", openai.Invalid("input is required")
	}
	return nil, "", openai.Invalid("input must be a string or an array of strings")
}
