package fakeprovider

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Amazon Bedrock Runtime wire formats, from AWS's documentation:
//   - Converse request/response (messages, system, inferenceConfig,
//     toolConfig; output.message.content, stopReason, usage):
//     https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html
//   - ConverseStream events (messageStart, contentBlockStart/Delta/Stop,
//     messageStop, metadata; exception events):
//     https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
//     https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
//   - event stream framing (application/vnd.amazon.eventstream, written
//     here with aws-sdk-go-v2's eventstream Encoder):
//     https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream
//   - InvokeModel (embeddings): https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModel.html,
//     Titan https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html,
//     Cohere https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html
//   - errors ({"message"} with x-amzn-ErrorType; statuses 400/403/404/408/
//     424/429/500/503): https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html
//     and the Errors section of the Converse page.
//   - SigV4 Authorization header: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-request.html

type bedrockProvider struct{}

func (bedrockProvider) commonHeaders(c *call, _ bool) {
	c.w.Header().Set("x-amzn-RequestId", c.id("req_fake"))
}

func (bedrockProvider) defaultError(status int) apiError {
	e := apiError{Status: status}
	switch status {
	case 400:
		e.Type, e.Message = "ValidationException", "Malformed input request"
	case 403:
		e.Type, e.Message = "AccessDeniedException", "You don't have access to the model with the specified model ID."
	case 404:
		e.Type, e.Message = "ResourceNotFoundException", "The requested resource could not be found."
	case 408:
		e.Type, e.Message = "ModelTimeoutException", "Model has timed out in processing the request."
	case 413:
		e.Type, e.Message = "ValidationException", "Input is too long for requested model."
	case 424:
		e.Type, e.Message = "ModelErrorException", "The model returned an error."
	case 429:
		e.Type, e.Message = "ThrottlingException", "Too many requests, please wait before trying again."
	case 500:
		e.Type, e.Message = "InternalServerException", "An internal server error occurred."
	case 503:
		e.Type, e.Message = "ServiceUnavailableException", "Bedrock is unable to process your request."
	default:
		if status < 500 {
			e.Type = "ValidationException"
		} else {
			e.Type = "InternalServerException"
		}
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = fmt.Sprintf("Error %d", status)
		}
	}
	return e
}

func (p bedrockProvider) writeError(c *call, e apiError) {
	if e.Type == "" {
		e.Type = p.defaultError(e.Status).Type
	}
	p.commonHeaders(c, false)
	c.w.Header().Set("x-amzn-ErrorType", e.Type+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	if e.Status == http.StatusTooManyRequests {
		c.w.Header().Set("retry-after", "1")
	}
	c.writeJSON(e.Status, map[string]string{"message": e.Message})
}

// sigV4Auth matches a SigV4 Authorization header whose credential scope is
// for the bedrock service.
var sigV4Auth = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)/(\d{8})/([a-z0-9-]+)/bedrock/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$`)

// authorize checks that the request carries a well-formed SigV4
// Authorization header (the signature itself is not verified) with
// host and x-amz-date signed, and, with RequireKey, that the access key id
// is key.
func (p bedrockProvider) contextLength(c *call) {
	p.writeError(c, apiError{Status: 400, Type: "ValidationException", Message: "Input is too long for requested model."})
}

func (p bedrockProvider) authorize(c *call, key string) bool {
	m := sigV4Auth.FindStringSubmatch(c.r.Header.Get("Authorization"))
	date := c.r.Header.Get("X-Amz-Date")
	var why string
	switch {
	case m == nil:
		why = "Missing or malformed SigV4 Authorization header (want credential scope .../bedrock/aws4_request)"
	case date == "" || !strings.HasPrefix(date, m[2]):
		why = "X-Amz-Date is missing or does not match the credential scope date"
	case !strings.Contains(";"+m[4]+";", ";host;") || !strings.Contains(";"+m[4]+";", ";x-amz-date;"):
		why = "SignedHeaders must include host and x-amz-date"
	case key != "" && m[1] != key:
		why = "The security token included in the request is invalid."
	default:
		return true
	}
	p.writeError(c, apiError{Status: http.StatusForbidden, Type: "UnrecognizedClientException", Message: why})
	return false
}

func (p bedrockProvider) route(c *call) {
	// The model id is one escaped path segment (ARNs contain '/').
	seg := strings.Split(strings.TrimPrefix(c.r.URL.EscapedPath(), "/"), "/")
	if c.r.Method != http.MethodPost || len(seg) != 3 || seg[0] != "model" {
		p.writeError(c, apiError{Status: 404, Type: "UnknownOperationException", Message: "Unknown operation " + c.r.Method + " " + c.r.URL.Path})
		return
	}
	model, err := url.PathUnescape(seg[1])
	if err != nil || model == "" {
		p.writeError(c, apiError{Status: 400, Message: "bad model id"})
		return
	}
	switch seg[2] {
	case "converse":
		p.converse(c, model, false)
	case "converse-stream":
		p.converse(c, model, true)
	case "invoke":
		p.invoke(c, model)
	case "invoke-with-response-stream":
		if !strings.Contains(model, "anthropic.claude") {
			p.writeError(c, apiError{Status: 400, Message: "fake: InvokeModelWithResponseStream serves anthropic.claude-* only"})
			return
		}
		p.invokeAnthropic(c, model, true)
	default:
		p.writeError(c, apiError{Status: 404, Type: "UnknownOperationException", Message: "Unknown operation " + seg[2]})
	}
}

type brContent struct {
	Text       *string         `json:"text,omitempty"`
	Image      json.RawMessage `json:"image,omitempty"`
	Document   json.RawMessage `json:"document,omitempty"`
	ToolUse    *brToolUse      `json:"toolUse,omitempty"`
	ToolResult *struct {
		ToolUseID string      `json:"toolUseId"`
		Content   []brContent `json:"content"`
	} `json:"toolResult,omitempty"`
}

type brToolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type brRequest struct {
	Messages []struct {
		Role    string      `json:"role"`
		Content []brContent `json:"content"`
	} `json:"messages"`
	System []struct {
		Text string `json:"text"`
	} `json:"system"`
	InferenceConfig struct {
		MaxTokens int `json:"maxTokens"`
	} `json:"inferenceConfig"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec struct {
				Name        string `json:"name"`
				InputSchema struct {
					JSON json.RawMessage `json:"json"`
				} `json:"inputSchema"`
			} `json:"toolSpec"`
		} `json:"tools"`
		ToolChoice map[string]json.RawMessage `json:"toolChoice"`
	} `json:"toolConfig"`
}

func (b brContent) text() string {
	var parts []string
	if b.Text != nil {
		parts = append(parts, *b.Text)
	}
	if b.ToolUse != nil {
		parts = append(parts, b.ToolUse.Name, string(b.ToolUse.Input))
	}
	if b.ToolResult != nil {
		for _, x := range b.ToolResult.Content {
			parts = append(parts, x.text())
		}
	}
	return strings.Join(parts, " ")
}

// converse validates a Converse body and answers like the other fakes:
// an echo of the last user text, a tool result echo, or a call of the
// forced (else first) tool with arguments built from its schema, as the
// other fakes do.
func (p bedrockProvider) converse(c *call, model string, stream bool) {
	var req brRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		p.writeError(c, apiError{Status: 400, Message: "Malformed input request: " + err.Error()})
		return
	}
	if len(req.Messages) == 0 {
		p.writeError(c, apiError{Status: 400, Message: "Malformed input request: #/messages: expected minimum item count: 1"})
		return
	}
	prompt := 0
	for _, s := range req.System {
		prompt += 3 + words(s.Text)
	}
	want := "user"
	for i, m := range req.Messages {
		if m.Role != want {
			p.writeError(c, apiError{Status: 400, Message: fmt.Sprintf("A conversation must alternate between user and assistant roles (messages[%d] is %q).", i, m.Role)})
			return
		}
		if len(m.Content) == 0 {
			p.writeError(c, apiError{Status: 400, Message: fmt.Sprintf("The content field in the Message object at messages.%d is empty.", i)})
			return
		}
		var parts []string
		for _, b := range m.Content {
			if b.Text != nil && strings.TrimSpace(*b.Text) == "" {
				p.writeError(c, apiError{Status: 400, Message: "The text field in the ContentBlock object is blank."})
				return
			}
			if (b.ToolUse != nil || b.ToolResult != nil) && req.ToolConfig == nil {
				p.writeError(c, apiError{Status: 400, Message: "The toolConfig field must be defined when using toolUse and toolResult content blocks."})
				return
			}
			parts = append(parts, b.text())
		}
		prompt += 3 + words(strings.Join(parts, " "))
		want = map[string]string{"user": "assistant", "assistant": "user"}[m.Role]
	}
	last := req.Messages[len(req.Messages)-1]
	if last.Role != "user" {
		p.writeError(c, apiError{Status: 400, Message: "A conversation must end with a user message."})
		return
	}
	var tool *brToolUse
	var reply string
	isToolResult := last.Content[len(last.Content)-1].ToolResult != nil
	if tc := req.ToolConfig; tc != nil && len(tc.Tools) > 0 && !isToolResult {
		spec := tc.Tools[0].ToolSpec
		if raw, ok := tc.ToolChoice["tool"]; ok {
			var f struct{ Name string }
			_ = json.Unmarshal(raw, &f)
			for _, t := range tc.Tools {
				if t.ToolSpec.Name == f.Name {
					spec = t.ToolSpec
				}
			}
			spec.Name = f.Name
		}
		tool = &brToolUse{ToolUseID: c.id("tooluse_fake"), Name: spec.Name, Input: json.RawMessage(schemaArgs(spec.InputSchema.JSON))}
	} else {
		var texts []string
		for _, b := range last.Content {
			texts = append(texts, b.text())
		}
		if isToolResult {
			reply = toolResultReply(c.pname, strings.Join(texts, " "))
		} else {
			reply = echoReply(c.pname, strings.Join(texts, " "))
		}
	}
	stop, completion := "end_turn", words(reply)
	if tool != nil {
		stop, completion = "tool_use", toolCallTokens(string(tool.Input))
	} else if mt := req.InferenceConfig.MaxTokens; mt > 0 && completion > mt {
		chunks := wordChunks(reply)
		reply, stop, completion = strings.Join(chunks[:mt], ""), "max_tokens", mt
	}
	usage := map[string]int{"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}
	if c.beh.cached > 0 {
		usage["cacheReadInputTokens"] = c.beh.cached
		usage["totalTokens"] += c.beh.cached
	}
	if c.beh.cacheRead > 0 || c.beh.cacheWrite > 0 {
		usage["cacheReadInputTokens"], usage["cacheWriteInputTokens"] = c.beh.cacheRead, c.beh.cacheWrite
		usage["totalTokens"] += c.beh.cacheRead + c.beh.cacheWrite
	}
	if !stream {
		var content []any
		if tool != nil {
			content = append(content, map[string]any{"toolUse": tool})
		} else {
			content = append(content, map[string]any{"text": reply})
		}
		c.writeJSON(200, map[string]any{
			"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
			"stopReason": stop,
			"usage":      usage,
			"metrics":    map[string]int{"latencyMs": 1},
		})
		return
	}
	ew := c.startEventStream()
	ew.event("messageStart", map[string]any{"role": "assistant"})
	if tool != nil {
		ew.event("contentBlockStart", map[string]any{"contentBlockIndex": 0, "start": map[string]any{"toolUse": map[string]string{"toolUseId": tool.ToolUseID, "name": tool.Name}}})
		ew.event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"toolUse": map[string]string{"input": string(tool.Input)}}})
		if c.beh.streamError {
			ew.exception("modelStreamErrorException", "The model stream was interrupted.")
			return
		}
	} else {
		for i, w := range wordChunks(reply) {
			ew.event("contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]string{"text": w}})
			if i == 0 && c.beh.streamError {
				ew.exception("modelStreamErrorException", "The model stream was interrupted.")
				return
			}
		}
	}
	ew.event("contentBlockStop", map[string]any{"contentBlockIndex": 0})
	ew.event("messageStop", map[string]any{"stopReason": stop})
	ew.event("metadata", map[string]any{"usage": usage, "metrics": map[string]int{"latencyMs": 1}})
}

// invoke serves InvokeModel for the Titan and Cohere embedding models.
func (p bedrockProvider) invoke(c *call, model string) {
	switch {
	case strings.Contains(model, "amazon.titan-embed"):
		var req struct {
			InputText  *string `json:"inputText"`
			Dimensions int     `json:"dimensions"`
		}
		if err := json.Unmarshal(c.body, &req); err != nil || req.InputText == nil {
			p.writeError(c, apiError{Status: 400, Message: "Malformed input request: #: required key [inputText] not found"})
			return
		}
		dims := req.Dimensions
		if dims == 0 {
			dims = 8
		}
		c.writeJSON(200, map[string]any{"embedding": Embedding(*req.InputText, dims), "inputTextTokenCount": words(*req.InputText)})
	case strings.Contains(model, "cohere.embed"):
		var req struct {
			Texts     []string `json:"texts"`
			InputType string   `json:"input_type"`
		}
		if err := json.Unmarshal(c.body, &req); err != nil || len(req.Texts) == 0 || req.InputType == "" {
			p.writeError(c, apiError{Status: 400, Message: "Malformed input request: texts and input_type are required"})
			return
		}
		vecs := make([][]float32, len(req.Texts))
		for i, t := range req.Texts {
			vecs[i] = Embedding(t, 8)
		}
		c.writeJSON(200, map[string]any{"embeddings": vecs, "id": c.id("emb_fake"), "response_type": "embeddings_floats", "texts": req.Texts})
	case strings.Contains(model, "anthropic.claude"):
		p.invokeAnthropic(c, model, false)
	default:
		p.writeError(c, apiError{Status: 400, Message: "fake: InvokeModel serves amazon.titan-embed-*, cohere.embed-* and anthropic.claude-* only"})
	}
}

// invokeAnthropic serves Anthropic Messages on InvokeModel: the body is
// Anthropic's with "anthropic_version": "bedrock-2023-05-31" and no model;
// the reply is Anthropic's message JSON; a stream is eventstream "chunk"
// events whose payload is {"bytes": base64 of one Anthropic stream event's
// JSON} (PayloadPart). The Anthropic fake writes the content.
//   - https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html
//   - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html
//   - https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_PayloadPart.html
func (p bedrockProvider) invokeAnthropic(c *call, model string, stream bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(c.body, &m) != nil || m == nil {
		p.writeError(c, apiError{Status: 400, Message: "Malformed input request, please reformat your input and try again."})
		return
	}
	if string(m["anthropic_version"]) != `"bedrock-2023-05-31"` {
		p.writeError(c, apiError{Status: 400, Message: "Malformed input request: #: required key [anthropic_version] not found"})
		return
	}
	if _, ok := m["model"]; ok {
		p.writeError(c, apiError{Status: 400, Message: "Malformed input request: #: extraneous key [model] is not permitted"})
		return
	}
	if raw, ok := m["anthropic_beta"]; ok {
		// InvokeModel takes the anthropic-beta header as this body field,
		// an array of beta names.
		var betas []string
		if json.Unmarshal(raw, &betas) != nil || betas == nil {
			p.writeError(c, apiError{Status: 400, Message: "Malformed input request: #/anthropic_beta: expected type: JSONArray of strings"})
			return
		}
		delete(m, "anthropic_beta")
	}
	delete(m, "anthropic_version")
	m["model"], _ = json.Marshal(model)
	if stream {
		m["stream"] = json.RawMessage("true")
	} else {
		delete(m, "stream")
	}
	body, _ := json.Marshal(m)
	rec := httptest.NewRecorder()
	sub := *c
	sub.w, sub.body = rec, body
	sub.beh.cutAfter, sub.beh.holdAfter = 0, 0 // counted on the eventstream frames below
	anthropicProvider{}.messages(&sub, false)
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		p.writeError(c, apiError{Status: res.StatusCode, Message: e.Error.Message})
		return
	}
	if !stream {
		c.w.Header().Set("Content-Type", "application/json")
		c.writeBody(http.StatusOK, rec.Body.Bytes())
		return
	}
	ew := c.startEventStream()
	for _, ev := range strings.Split(rec.Body.String(), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				ew.event("chunk", map[string]string{"bytes": base64.StdEncoding.EncodeToString([]byte(data))})
			}
		}
	}
}

// eventWriter writes event stream messages, flushing each, and aborts the
// connection after cut-after messages.
type eventWriter struct {
	c   *call
	enc *eventstream.Encoder
	sw  *sseWriter // for flushing and counting
	buf bytes.Buffer
}

func (c *call) startEventStream() *eventWriter {
	sw := c.startSSE("application/vnd.amazon.eventstream")
	return &eventWriter{c: c, enc: eventstream.NewEncoder(), sw: sw}
}

func (ew *eventWriter) write(h eventstream.Headers, v any) {
	payload, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	h.Set(":content-type", eventstream.StringValue("application/json"))
	ew.buf.Reset()
	if err := ew.enc.Encode(&ew.buf, eventstream.Message{Headers: h, Payload: payload}); err != nil {
		panic(err)
	}
	_, _ = ew.sw.w.Write(ew.buf.Bytes())
	ew.sw.written()
}

func (ew *eventWriter) event(typ string, v any) {
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue("event"))
	h.Set(":event-type", eventstream.StringValue(typ))
	ew.write(h, v)
}

func (ew *eventWriter) exception(typ, msg string) {
	var h eventstream.Headers
	h.Set(":message-type", eventstream.StringValue("exception"))
	h.Set(":exception-type", eventstream.StringValue(typ))
	ew.write(h, map[string]string{"message": msg})
}
