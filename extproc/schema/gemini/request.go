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
	js := jsonw.View(req.Body)
	if !gjson.Valid(js) {
		return nil, false, openai.Invalid("body is not valid JSON")
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, false, openai.Invalid("body must be a JSON object")
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

type chatFields struct {
	messages, tools, toolChoice, maxTokens, maxCompletion, stop     gjson.Result
	temperature, topP, n, seed, presence, frequency, format, stream gjson.Result
}

func translateChat(root gjson.Result, size int) ([]byte, error) {
	var f chatFields
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messages":
			f.messages = v
		case "tools":
			f.tools = v
		case "tool_choice":
			f.toolChoice = v
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
		case "n":
			f.n = v
		case "seed":
			f.seed = v
		case "presence_penalty":
			f.presence = v
		case "frequency_penalty":
			f.frequency = v
		case "response_format":
			f.format = v
		case "stream":
			f.stream = v
		}
		return true
	})
	if jsonw.Present(f.n) {
		if !isPositiveInt(f.n) {
			return nil, openai.Invalid("n must be a positive integer")
		}
		if f.n.Num > 1 {
			return nil, openai.Unsupported("n > 1 (this translation returns one choice)")
		}
	}
	if jsonw.Present(f.stream) && f.stream.Type != gjson.True && f.stream.Type != gjson.False {
		return nil, openai.Invalid("stream must be a boolean")
	}
	if !jsonw.Present(f.messages) {
		return nil, openai.Invalid("messages is required")
	}
	if !f.messages.IsArray() {
		return nil, openai.Invalid("messages must be an array")
	}
	w := contentWriter{out: make([]byte, 0, size+256), turns: jsonw.Turns{Key: "parts"}}
	w.calls = w.callsBuf[:0]
	w.out = append(w.out, `{"contents":[`...)
	if err := openai.ReadMessages(f.messages, &w); err != nil {
		return nil, err
	}
	w.close()
	if w.turns.Count() == 0 {
		return nil, openai.Invalid("messages must contain at least one non-empty user or assistant message")
	}
	out := append(w.out, ']')
	out = appendSystem(out, w.sys)
	var err error
	if out, err = appendTools(out, f.tools, f.toolChoice); err != nil {
		return nil, err
	}
	if out, err = appendGenerationConfig(out, &f); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

func isPositiveInt(r gjson.Result) bool {
	return r.Type == gjson.Number && r.Num == math.Trunc(r.Num) && r.Num >= 1 && r.Num <= math.MaxInt32
}

// callRef remembers an assistant tool call so that the tool message
// answering it can name the function.
type callRef struct{ id, name string }

// contentWriter builds the contents array from the OpenAI reader's
// visits, merging consecutive messages of the same Gemini role and
// collecting system messages.
type contentWriter struct {
	out   []byte
	turns jsonw.Turns // Gemini rejects empty contents and repeated roles
	sys   []gjson.Result
	calls []callRef
	// calls' first backing array: the writer is on the heap (the reader
	// holds it as an interface), so the first calls cost no allocation of
	// their own.
	callsBuf [2]callRef
}

func (w *contentWriter) System(c gjson.Result) { w.sys = append(w.sys, c) }

func (w *contentWriter) Turn(r openai.Role) {
	role := "user"
	if r == openai.Assistant {
		role = "model"
	}
	w.out = w.turns.Open(w.out, role)
}

func (w *contentWriter) Text(s gjson.Result) {
	w.part()
	w.out = append(w.out, `{"text":`...)
	w.out = append(w.out, s.Raw...)
	w.out = append(w.out, '}')
}

// appendSystem writes systemInstruction with one text part per non-empty
// system text.
func appendSystem(out []byte, sys []gjson.Result) []byte {
	if len(sys) == 0 {
		return out
	}
	start := len(out)
	out = append(out, `,"systemInstruction":{"parts":[`...)
	n := 0
	openai.SystemTexts(sys, func(s gjson.Result) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, `{"text":`...)
		out = jsonw.AppendRawString(out, s)
		out = append(out, '}')
	})
	if n == 0 {
		return out[:start]
	}
	return append(out, "]}"...)
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
		w.part()
		w.out = appendInline(w.out, media, data)
	case openai.HasPrefixFold(u, "https://") || openai.HasPrefixFold(u, "http://"):
		w.part()
		w.out = append(w.out, `{"fileData":{"mimeType":"`...)
		w.out = append(w.out, guessMime(u)...)
		w.out = append(w.out, `","fileUri":`...)
		w.out = jsonw.AppendString(w.out, u)
		w.out = append(w.out, "}}"...)
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
	w.part()
	w.out = appendInline(w.out, "audio/"+strings.ToLower(format.Str), data.Str)
	return nil
}

func (w *contentWriter) File(i, j int, d string) error {
	media, data, ok := openai.ParseDataURL(d)
	if !ok {
		return openai.Unsupported("messages[%d].content[%d].file.file_data: only base64 data: URLs", i, j)
	}
	w.part()
	w.out = appendInline(w.out, media, data)
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
	w.part()
	w.out = append(w.out, `{"functionCall":{"name":`...)
	w.out = append(w.out, name.Raw...)
	w.out = append(w.out, `,"args":`...)
	w.out = append(w.out, input...)
	w.out = append(w.out, '}')
	if k := strings.Index(id.Str, SigSep); k >= 0 && k+len(SigSep) < len(id.Str) {
		w.out = append(w.out, `,"thoughtSignature":`...)
		w.out = jsonw.AppendString(w.out, id.Str[k+len(SigSep):])
	}
	w.out = append(w.out, '}')
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
	w.part()
	w.out = append(w.out, `{"functionResponse":{"name":`...)
	w.out = jsonw.AppendString(w.out, name)
	w.out = append(w.out, `,"response":`...)
	switch {
	case !jsonw.Present(c):
		w.out = append(w.out, `{"result":""}`...)
	case c.Type == gjson.String:
		if s := strings.TrimSpace(c.Str); len(s) > 0 && s[0] == '{' && gjson.Valid(s) {
			w.out = append(w.out, s...)
		} else {
			w.out = append(w.out, `{"result":`...)
			w.out = append(w.out, c.Raw...)
			w.out = append(w.out, '}')
		}
	case c.IsArray():
		w.out = append(w.out, `{"result":"`...)
		var err error
		j := 0
		c.ForEach(func(_, p gjson.Result) bool {
			t := p.Get("text")
			if p.Get("type").Str != "text" || t.Type != gjson.String {
				err = openai.Unsupported("messages[%d].content[%d]: tool results with non-text parts", i, j)
				return false
			}
			w.out = append(w.out, jsonw.RawStringBody(t)...)
			j++
			return true
		})
		if err != nil {
			return err
		}
		w.out = append(w.out, `"}`...)
	default:
		return openai.Invalid("messages[%d].content must be a string or an array of text parts", i)
	}
	w.out = append(w.out, "}}"...)
	return nil
}

// appendTools writes tools and toolConfig.
func appendTools(out []byte, tools, choice gjson.Result) ([]byte, error) {
	if !jsonw.Present(tools) {
		if jsonw.Present(choice) && !(choice.Type == gjson.String && (choice.Str == "none" || choice.Str == "auto")) {
			return out, openai.Invalid("tool_choice requires tools")
		}
		return out, nil
	}
	if !tools.IsArray() {
		return out, openai.Invalid("tools must be an array")
	}
	start := len(out)
	out = append(out, `,"tools":[{"functionDeclarations":[`...)
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
		switch {
		case !jsonw.Present(params):
		case params.IsObject():
			out = append(out, `,"parametersJsonSchema":`...)
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
	out = append(out, "]}]"...)
	switch {
	case !jsonw.Present(choice):
		return out, nil
	case choice.Type == gjson.String:
		switch choice.Str {
		case "auto":
			return append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}}`...), nil
		case "required":
			return append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"ANY"}}`...), nil
		case "none":
			return append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"NONE"}}`...), nil
		}
		return out, openai.Invalid("tool_choice %q is not one of auto, required, none", choice.Str)
	case choice.IsObject():
		if typ := choice.Get("type"); typ.Str != "function" {
			return out, openai.Unsupported("tool_choice type %q", typ.String())
		}
		name := choice.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return out, openai.Invalid("tool_choice.function.name is required")
		}
		out = append(out, `,"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":[`...)
		out = append(out, name.Raw...)
		return append(out, "]}}"...), nil
	}
	return out, openai.Invalid("tool_choice must be a string or an object")
}

// appendGenerationConfig writes generationConfig, or nothing when no
// setting applies.
func appendGenerationConfig(out []byte, f *chatFields) ([]byte, error) {
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
	if err := number(f.temperature, "temperature", "temperature"); err != nil {
		return out, err
	}
	if err := number(f.topP, "top_p", "topP"); err != nil {
		return out, err
	}
	if err := number(f.presence, "presence_penalty", "presencePenalty"); err != nil {
		return out, err
	}
	if err := number(f.frequency, "frequency_penalty", "frequencyPenalty"); err != nil {
		return out, err
	}
	if jsonw.Present(f.seed) {
		if f.seed.Type != gjson.Number || f.seed.Num != math.Trunc(f.seed.Num) || math.Abs(f.seed.Num) > math.MaxInt32 {
			return out, openai.Invalid("seed must be an integer")
		}
		field("seed")
		out = strconv.AppendInt(out, int64(f.seed.Num), 10)
	}
	mt, mtName := f.maxCompletion, "max_completion_tokens"
	if !jsonw.Present(mt) {
		mt, mtName = f.maxTokens, "max_tokens"
	}
	if jsonw.Present(mt) {
		if !isPositiveInt(mt) {
			return out, openai.Invalid("%s must be a positive integer", mtName)
		}
		field("maxOutputTokens")
		out = strconv.AppendInt(out, int64(mt.Num), 10)
	}
	switch {
	case !jsonw.Present(f.stop):
	case f.stop.Type == gjson.String:
		if f.stop.Str != "" {
			field("stopSequences")
			out = append(out, '[')
			out = append(out, f.stop.Raw...)
			out = append(out, ']')
		}
	case f.stop.IsArray():
		k := 0
		var err error
		f.stop.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = openai.Invalid("stop must be a string or an array of strings")
				return false
			}
			if s.Str == "" {
				return true
			}
			if k == 0 {
				field("stopSequences")
				out = append(out, '[')
			} else {
				out = append(out, ',')
			}
			k++
			out = append(out, s.Raw...)
			return true
		})
		if err != nil {
			return out, err
		}
		if k > 0 {
			out = append(out, ']')
		}
	default:
		return out, openai.Invalid("stop must be a string or an array of strings")
	}
	if jsonw.Present(f.format) {
		if !f.format.IsObject() {
			return out, openai.Invalid("response_format must be an object")
		}
		switch typ := f.format.Get("type").Str; typ {
		case "text":
		case "json_object":
			field("responseMimeType")
			out = append(out, `"application/json"`...)
		case "json_schema":
			schema := f.format.Get("json_schema.schema")
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
	if jsonw.Present(dims) && !isPositiveInt(dims) {
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

func (w *contentWriter) part()  { w.out = w.turns.Item(w.out) }
func (w *contentWriter) close() { w.out = w.turns.Close(w.out) }
