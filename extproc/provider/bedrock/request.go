package bedrock

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/jsonw"
	"github.com/weir-ai/weir/extproc/schema/messages"
	"github.com/weir-ai/weir/extproc/schema/openai"
)

// Converse request: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
// (Message, ContentBlock, ImageBlock, ToolUseBlock, ToolResultBlock,
// InferenceConfiguration, ToolConfiguration, ToolChoice are linked there).

// TranslateRequest builds the signed Bedrock request for one attempt.
func (t *translator) TranslateRequest(req *provider.Request) (*provider.Upstream, error) {
	if req.Endpoint == provider.EndpointMessages {
		return t.nativeRequest(req)
	}
	root, err := openai.ParseObject(req.Body)
	if err != nil {
		return nil, err
	}
	model := req.Model
	if model == "" {
		m := root.Get("model")
		if m.Type != gjson.String || m.Str == "" {
			return nil, openai.Invalid("model is required")
		}
		model = m.Str
	}
	var body []byte
	var op string
	switch req.Endpoint {
	case provider.EndpointChat:
		stream := req.Stream || root.Get("stream").Type == gjson.True
		if id, ok := strings.CutPrefix(model, InvokePrefix); ok {
			if !isAnthropic(id) {
				return nil, openai.Unsupported("%s is for Anthropic models on Bedrock, not %q", InvokePrefix, id)
			}
			model, op = id, "invoke"
			if stream {
				op = "invoke-with-response-stream"
			}
			body, err = anthropicBody(req, id)
		} else {
			op = "converse"
			if stream {
				op = "converse-stream"
			}
			body, err = translateChat(root)
		}
	case provider.EndpointEmbeddings:
		op = "invoke"
		body, err = translateEmbeddings(root, model)
	default:
		return nil, openai.Unsupported("the %s endpoint (Bedrock serves chat completions and embeddings)", req.Endpoint)
	}
	if err != nil {
		return nil, err
	}
	escaped, raw := modelPath(model, op)
	return t.sign(req.Ctx, escaped, raw, body)
}

func present(r gjson.Result) bool { return r.Exists() && r.Type != gjson.Null }

// isAnthropic matches anthropic.* and cross-region profiles like us.anthropic.*.
func isAnthropic(id string) bool {
	return strings.HasPrefix(id, "anthropic.") || strings.Contains(id, ".anthropic.") || strings.Contains(id, "/anthropic.")
}

// anthropicBody is the Messages body for InvokeModel: no model and no
// stream field (the operation says), plus anthropic_version.
func anthropicBody(req *provider.Request, id string) ([]byte, error) {
	r := *req
	r.Model, r.Stream = id, false
	b, err := messages.TranslateChat(&r)
	if err != nil {
		return nil, err
	}
	opts := &sjson.Options{ReplaceInPlace: true}
	if b, err = sjson.DeleteBytes(b, "model"); err == nil {
		if b, err = sjson.DeleteBytes(b, "stream"); err == nil {
			b, err = sjson.SetBytesOptions(b, "anthropic_version", AnthropicVersion, opts)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bedrock: building the InvokeModel body: %w", err)
	}
	return b, nil
}

func translateChat(root gjson.Result) ([]byte, error) {
	var f openai.Chat
	openai.ReadChat(root, &f)
	if err := f.CheckN("Bedrock returns one choice"); err != nil {
		return nil, err
	}
	if err := f.CheckStream(); err != nil {
		return nil, err
	}
	if err := f.CheckMessages(); err != nil {
		return nil, err
	}
	// Sized for the whole body: tools and settings are written too, and a
	// buffer grown midway is one more allocation and copy.
	out := make([]byte, 0, len(root.Raw)+256)
	w := msgWriter{Conversation: openai.Conversation{Out: append(out, `{"messages":[`...), Turns: jsonw.Turns{Key: "content"}, AssistantRole: "assistant"}}
	if err := openai.ReadMessages(f.Messages, &w); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out = append(w.Out, ']')
	out = appendSystem(out, w.Sys)

	// inferenceConfig
	start := len(out)
	out = append(out, `,"inferenceConfig":{`...)
	n := 0
	sep := func() {
		if n > 0 {
			out = append(out, ',')
		}
		n++
	}
	mt, set, err := f.OutputLimit()
	if err != nil {
		return nil, err
	}
	if set {
		sep()
		out = append(out, `"maxTokens":`...)
		out = strconv.AppendInt(out, mt, 10)
	}
	if present(f.Temperature) {
		if f.Temperature.Type != gjson.Number {
			return nil, openai.Invalid("temperature must be a number")
		}
		sep()
		out = append(out, `"temperature":`...)
		out = strconv.AppendFloat(out, min(max(f.Temperature.Num, 0), 1), 'g', -1, 64)
	}
	if present(f.TopP) {
		if f.TopP.Type != gjson.Number {
			return nil, openai.Invalid("top_p must be a number")
		}
		sep()
		out = append(out, `"topP":`...)
		out = strconv.AppendFloat(out, min(max(f.TopP.Num, 0), 1), 'g', -1, 64)
	}
	k := 0
	err = openai.Stops(f.Stop, func(s gjson.Result) {
		if k == 0 {
			sep()
			out = append(out, `"stopSequences":[`...)
		} else {
			out = append(out, ',')
		}
		k++
		out = append(out, s.Raw...)
	})
	if err != nil {
		return nil, err
	}
	if k > 0 {
		out = append(out, ']')
	}
	if n == 0 {
		out = out[:start]
	} else {
		out = append(out, '}')
	}
	if out, err = appendTools(out, f.Tools, f.ToolChoice, w.toolBlocks > 0); err != nil {
		return nil, err
	}
	return append(out, '}'), nil
}

// msgWriter builds the messages array from the OpenAI reader's visits,
// merging consecutive messages of one role and collecting system messages.
type msgWriter struct {
	openai.Conversation     // Out, Turns, Sys
	toolBlocks          int // toolUse and toolResult blocks written
	docs                int
}

// appendSystem writes "system":[{"text":...},...], skipping empty texts.
func appendSystem(out []byte, sys []gjson.Result) []byte {
	return openai.AppendSystem(out, sys, `,"system":[`, `{"text":`, `]`)
}

func (w *msgWriter) Text(s gjson.Result) {
	w.Item()
	w.Out = append(w.Out, `{"text":`...)
	w.Out = jsonw.AppendRawString(w.Out, s)
	w.Out = append(w.Out, '}')
}

// imageFormat maps a media type to Converse's ImageBlock format.
func imageFormat(media string) string {
	switch media {
	case "image/png":
		return "png"
	case "image/jpeg", "image/jpg":
		return "jpeg"
	case "image/gif":
		return "gif"
	case "image/webp":
		return "webp"
	}
	return ""
}

func (w *msgWriter) Image(i, j int, u string, user bool) error {
	if !user {
		return openai.Invalid("messages[%d].content[%d]: images are allowed in user and tool messages only", i, j)
	}
	if openai.HasPrefixFold(u, "http://") || openai.HasPrefixFold(u, "https://") {
		return openai.Unsupported("messages[%d].content[%d].image_url.url: image URLs (Bedrock takes images inline: send a base64 data: URL)", i, j)
	}
	media, data, ok := openai.ParseDataURL(u)
	if !ok {
		return openai.Invalid("messages[%d].content[%d].image_url.url: a data: URL must be data:<media type>;base64,<data>", i, j)
	}
	format := imageFormat(media)
	if format == "" {
		return openai.Unsupported("messages[%d].content[%d].image_url.url: image type %q (png, jpeg, gif and webp only)", i, j, media)
	}
	w.Item()
	w.Out = append(w.Out, `{"image":{"format":"`...)
	w.Out = append(w.Out, format...)
	w.Out = append(w.Out, `","source":{"bytes":`...)
	w.Out = jsonw.AppendString(w.Out, data)
	w.Out = append(w.Out, `}}}`...)
	return nil
}

func (w *msgWriter) File(i, j int, d string) error {
	media, data, ok := openai.ParseDataURL(d)
	if !ok || media != "application/pdf" {
		return openai.Unsupported("messages[%d].content[%d].file.file_data: only base64 data: URLs of PDF documents", i, j)
	}
	w.docs++
	w.Item()
	w.Out = append(w.Out, `{"document":{"format":"pdf","name":"document-`...)
	w.Out = strconv.AppendInt(w.Out, int64(w.docs), 10)
	w.Out = append(w.Out, `","source":{"bytes":`...)
	w.Out = jsonw.AppendString(w.Out, data)
	w.Out = append(w.Out, `}}}`...)
	return nil
}

func (w *msgWriter) Audio(i, j int, _ gjson.Result, _ bool) error {
	return openai.Unsupported("messages[%d].content[%d]: audio input", i, j)
}

// ToolCall writes an assistant's tool call as a toolUse block.
func (w *msgWriter) ToolCall(id, name gjson.Result, input string) {
	w.Item()
	w.toolBlocks++
	w.Out = append(w.Out, `{"toolUse":{"toolUseId":`...)
	w.Out = append(w.Out, id.Raw...)
	w.Out = append(w.Out, `,"name":`...)
	w.Out = append(w.Out, name.Raw...)
	w.Out = append(w.Out, `,"input":`...)
	w.Out = append(w.Out, input...)
	w.Out = append(w.Out, `}}`...)
}

// ToolResult writes a tool message as a toolResult block; its content is
// text and image blocks.
func (w *msgWriter) ToolResult(i int, id, c gjson.Result) error {
	w.Item()
	w.toolBlocks++
	w.Out = append(w.Out, `{"toolResult":{"toolUseId":`...)
	w.Out = append(w.Out, id.Raw...)
	w.Out = append(w.Out, `,"content":[`...)
	switch {
	case !jsonw.Present(c):
	case c.Type == gjson.String:
		if c.Str != "" {
			w.Out = append(w.Out, `{"text":`...)
			w.Out = append(w.Out, c.Raw...)
			w.Out = append(w.Out, '}')
		}
	case c.IsArray():
		// The parts are the result's own list: w writes them with the
		// turn's block count set aside.
		turn := w.Turns
		w.Turns = jsonw.Turns{}
		err := openai.Each(c, func(j int, p gjson.Result) error {
			if t := p.Get("type").Str; t != "text" && t != "image_url" {
				return openai.Unsupported("messages[%d].content[%d]: %q parts in tool results (text and images only)", i, j, t)
			}
			return openai.ReadPart(w, i, j, p, true)
		})
		w.Turns = turn
		if err != nil {
			return err
		}
	default:
		return openai.Invalid("messages[%d].content must be a string or an array of parts", i)
	}
	w.Out = append(w.Out, `]}}`...)
	return nil
}

// appendTools writes toolConfig.
func appendTools(out []byte, tools, choice gjson.Result, history bool) ([]byte, error) {
	if !present(tools) {
		return out, openai.CheckChoiceWithoutTools(choice)
	}
	if !tools.IsArray() {
		return out, openai.Invalid("tools must be an array")
	}
	mode, forced, err := openai.ReadToolChoice(choice)
	if err != nil {
		return out, err
	}
	start := len(out)
	out = append(out, `,"toolConfig":{"tools":[`...)
	err = openai.ReadTools(tools, func(n int, name, desc, params gjson.Result) {
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"toolSpec":{"name":`...)
		out = append(out, name.Raw...)
		if desc.Str != "" {
			out = append(out, `,"description":`...)
			out = append(out, desc.Raw...)
		}
		out = append(out, `,"inputSchema":{"json":`...)
		if present(params) {
			out = append(out, params.Raw...)
		} else {
			out = append(out, `{"type":"object","properties":{}}`...)
		}
		out = append(out, `}}}`...)
	})
	if err != nil {
		return out, err
	}
	// With tool_choice none and no tool blocks in the conversation the
	// tools are checked but not sent: Converse has no "none".
	if len(out) == start+len(`,"toolConfig":{"tools":[`) || (mode == openai.ChoiceNone && !history) {
		return out[:start], nil
	}
	out = append(out, ']')
	switch mode {
	case openai.ChoiceAuto:
		out = append(out, `,"toolChoice":{"auto":{}}`...)
	case openai.ChoiceRequired:
		out = append(out, `,"toolChoice":{"any":{}}`...)
	case openai.ChoiceFunction:
		out = append(out, `,"toolChoice":{"tool":{"name":`...)
		out = append(out, forced.Raw...)
		out = append(out, `}}`...)
	}
	return append(out, '}'), nil
}
