package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Gemini imitates the Gemini API of Google AI Studio
// (generativelanguage.googleapis.com).
const Gemini Kind = "gemini"

// Gemini wire formats, from Google's documentation:
//   - generateContent / streamGenerateContent request and response
//     (GenerateContentResponse, Candidate, FinishReason, UsageMetadata):
//     https://ai.google.dev/api/generate-content
//   - Content and Part (text, inlineData, fileData, functionCall,
//     functionResponse): https://ai.google.dev/api/caching#Content
//   - streaming with alt=sse ("data: <GenerateContentResponse>" events, each
//     ended by a blank line, CRLF line ends; no terminal event, the
//     connection closes after the chunk carrying finishReason):
//     https://ai.google.dev/gemini-api/docs/text-generation#streaming-responses
//     and the REST sample in https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
//   - function calling (tools[].functionDeclarations, toolConfig.
//     functionCallingConfig mode AUTO/ANY/NONE/VALIDATED and
//     allowedFunctionNames): https://ai.google.dev/gemini-api/docs/function-calling
//   - embeddings (embedContent → {"embedding":{"values"}},
//     batchEmbedContents → {"embeddings":[{"values"}]}, each request's model
//     must match the path): https://ai.google.dev/api/embeddings
//   - errors ({"error":{"code","message","status"}} with the google.rpc
//     status names; an invalid key is 400 INVALID_ARGUMENT with an ErrorInfo
//     detail of reason API_KEY_INVALID; no key is 403 PERMISSION_DENIED):
//     https://ai.google.dev/gemini-api/docs/troubleshooting and
//     https://cloud.google.com/apis/design/errors
//   - auth (x-goog-api-key header, or ?key=): https://ai.google.dev/api#authentication
//
// Differences from the real API: the fake sends no safety ratings, no
// thought parts and no response headers of note (the real API sends no
// rate-limit headers either); a stream-error behaviour sends an error
// object as an SSE data event.

type geminiProvider struct{}

func (geminiProvider) commonHeaders(c *call, _ bool) {
	h := c.w.Header()
	h.Set("server-timing", "gfet4t7; dur=1")
	h.Set("vary", "Origin, X-Origin, Referer")
}

// gmStatus is the google.rpc code name for an HTTP status.
func gmStatus(status int) string {
	switch status {
	case 400:
		return "INVALID_ARGUMENT"
	case 401:
		return "UNAUTHENTICATED"
	case 403:
		return "PERMISSION_DENIED"
	case 404:
		return "NOT_FOUND"
	case 409:
		return "ABORTED"
	case 429:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case 500:
		return "INTERNAL"
	case 501:
		return "UNIMPLEMENTED"
	case 503:
		return "UNAVAILABLE"
	case 504:
		return "DEADLINE_EXCEEDED"
	}
	if status < 500 {
		return "FAILED_PRECONDITION"
	}
	return "UNKNOWN"
}

func (geminiProvider) defaultError(status int) apiError {
	e := apiError{Status: status, Type: gmStatus(status)}
	switch status {
	case 400:
		e.Message = "Request contains an invalid argument."
	case 403:
		e.Message = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
	case 404:
		e.Message = "models/fake-model is not found for API version v1beta, or is not supported for generateContent."
	case 413:
		e.Message = "Request payload size exceeds the limit."
	case 429:
		e.Message = "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
	case 500:
		e.Message = "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
	case 503:
		e.Message = "The model is overloaded. Please try again later."
	case 504:
		e.Message = "The request timed out. Please try again."
	default:
		e.Message = http.StatusText(status)
		if e.Message == "" {
			e.Message = fmt.Sprintf("Error %d", status)
		}
	}
	return e
}

type gmErrorBody struct {
	Error gmErrorInfo `json:"error"`
}

type gmErrorInfo struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`
}

func (p geminiProvider) writeError(c *call, e apiError) {
	if e.Type == "" {
		e.Type = gmStatus(e.Status)
	}
	p.commonHeaders(c, e.Status == http.StatusTooManyRequests)
	info := gmErrorInfo{Code: e.Status, Message: e.Message, Status: e.Type}
	if e.Code != nil {
		info.Details = []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": *e.Code, "domain": "googleapis.com",
			"metadata": map[string]any{"service": "generativelanguage.googleapis.com"}}}
	}
	if e.Status == http.StatusTooManyRequests {
		// The delay is in the body only: Google sends no Retry-After.
		info.Details = []any{
			map[string]any{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []any{map[string]any{
				"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
				"quotaId":     "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
				"quotaValue":  "10",
			}}},
			map[string]any{"@type": "type.googleapis.com/google.rpc.Help", "links": []any{map[string]any{
				"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}}},
			map[string]any{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
		}
	}
	c.writeJSON(e.Status, gmErrorBody{Error: info})
}

func (p geminiProvider) contextLength(c *call) {
	p.writeError(c, apiError{Status: 400, Message: "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."})
}

func (p geminiProvider) authorize(c *call, key string) bool {
	if key == "" {
		return true
	}
	got := c.r.Header.Get("x-goog-api-key")
	if got == "" {
		got = c.r.URL.Query().Get("key")
	}
	switch {
	case got == "":
		p.writeError(c, p.defaultError(403))
		return false
	case got != key:
		p.writeError(c, apiError{Status: 400, Message: "API key not valid. Please pass a valid API key.", Code: strp("API_KEY_INVALID")})
		return false
	}
	return true
}

func (p geminiProvider) route(c *call) {
	path := c.r.URL.Path
	if c.r.Method == http.MethodGet && (path == "/v1beta/models" || path == "/v1/models") {
		p.models(c)
		return
	}
	rest, ok := strings.CutPrefix(path, "/v1beta/models/")
	if !ok {
		rest, ok = strings.CutPrefix(path, "/v1/models/")
	}
	i := strings.LastIndexByte(rest, ':')
	if !ok || i <= 0 || c.r.Method != http.MethodPost {
		p.writeError(c, apiError{Status: 404, Message: "The requested URL " + path + " was not found on this server."})
		return
	}
	model, method := rest[:i], rest[i+1:]
	switch method {
	case "generateContent":
		p.generate(c, model, false)
	case "streamGenerateContent":
		p.generate(c, model, true)
	case "embedContent":
		p.embed(c, model, false)
	case "batchEmbedContents":
		p.embed(c, model, true)
	default:
		p.writeError(c, apiError{Status: 404, Message: "Method not found: " + method})
	}
}

func (p geminiProvider) badRequest(c *call, msg string) {
	p.writeError(c, apiError{Status: 400, Message: msg})
}

// decode parses the body into v, answering 400 on failure.
func (p geminiProvider) decode(c *call, v any) bool {
	t := bytes.TrimSpace(c.body)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		p.badRequest(c, "Invalid JSON payload received. Unexpected token.")
		return false
	}
	d := json.NewDecoder(bytes.NewReader(t))
	d.DisallowUnknownFields() // the real API rejects unknown fields too
	if err := d.Decode(v); err != nil {
		p.badRequest(c, "Invalid JSON payload received. "+err.Error())
		return false
	}
	return true
}

type gmPart struct {
	Text             *string         `json:"text,omitempty"`
	Thought          bool            `json:"thought,omitempty"`
	ThoughtSignature string          `json:"thoughtSignature,omitempty"`
	InlineData       *gmBlob         `json:"inlineData,omitempty"`
	FileData         *gmFileData     `json:"fileData,omitempty"`
	FunctionCall     *gmFunctionCall `json:"functionCall,omitempty"`
	FunctionResponse *struct {
		ID       string          `json:"id,omitempty"`
		Name     string          `json:"name"`
		Response json.RawMessage `json:"response"`
	} `json:"functionResponse,omitempty"`
}

type gmBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type gmFileData struct {
	MimeType string `json:"mimeType"`
	FileURI  string `json:"fileUri"`
}

type gmFunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type gmContent struct {
	Role  string   `json:"role,omitempty"`
	Parts []gmPart `json:"parts"`
}

type gmRequest struct {
	Contents          []gmContent `json:"contents"`
	SystemInstruction *gmContent  `json:"systemInstruction"`
	Tools             []struct {
		FunctionDeclarations []struct {
			Name                 string          `json:"name"`
			Description          string          `json:"description"`
			Parameters           json.RawMessage `json:"parameters"`
			ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema"`
		} `json:"functionDeclarations"`
	} `json:"tools"`
	ToolConfig *struct {
		FunctionCallingConfig *struct {
			Mode                 string   `json:"mode"`
			AllowedFunctionNames []string `json:"allowedFunctionNames"`
		} `json:"functionCallingConfig"`
	} `json:"toolConfig"`
	GenerationConfig *struct {
		Temperature        *float64        `json:"temperature"`
		TopP               *float64        `json:"topP"`
		TopK               *int            `json:"topK"`
		MaxOutputTokens    *int            `json:"maxOutputTokens"`
		StopSequences      []string        `json:"stopSequences"`
		CandidateCount     *int            `json:"candidateCount"`
		Seed               *int            `json:"seed"`
		PresencePenalty    *float64        `json:"presencePenalty"`
		FrequencyPenalty   *float64        `json:"frequencyPenalty"`
		ResponseMimeType   string          `json:"responseMimeType"`
		ResponseSchema     json.RawMessage `json:"responseSchema"`
		ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
		ThinkingConfig     json.RawMessage `json:"thinkingConfig"`
	} `json:"generationConfig"`
	SafetySettings json.RawMessage `json:"safetySettings"`
	CachedContent  string          `json:"cachedContent"`
}

// partText is a part's contribution to the fake tokenizer.
func partText(pt gmPart) string {
	switch {
	case pt.Text != nil:
		return *pt.Text
	case pt.FunctionCall != nil:
		return pt.FunctionCall.Name + " " + string(pt.FunctionCall.Args)
	case pt.FunctionResponse != nil:
		return string(pt.FunctionResponse.Response)
	}
	return ""
}

func (p geminiProvider) generate(c *call, model string, stream bool) {
	if stream && c.r.URL.Query().Get("alt") != "sse" {
		// Without alt=sse the stream is one JSON array; the fake serves
		// only the SSE form, which is what Weir uses.
		p.badRequest(c, "fake: streamGenerateContent is served with alt=sse only")
		return
	}
	var req gmRequest
	if !p.decode(c, &req) {
		return
	}
	if len(req.Contents) == 0 {
		p.badRequest(c, "* GenerateContentRequest.contents: contents is not specified")
		return
	}
	type decl struct {
		name   string
		schema json.RawMessage
	}
	var decls []decl
	for i, t := range req.Tools {
		for j, d := range t.FunctionDeclarations {
			if d.Name == "" {
				p.badRequest(c, fmt.Sprintf("* GenerateContentRequest.tools[%d].function_declarations[%d].name: Name cannot be empty.", i, j))
				return
			}
			if len(d.Parameters) > 0 && len(d.ParametersJSONSchema) > 0 {
				p.badRequest(c, fmt.Sprintf("* GenerateContentRequest.tools[%d].function_declarations[%d]: parameters and parameters_json_schema are mutually exclusive.", i, j))
				return
			}
			s := d.ParametersJSONSchema
			if len(s) == 0 {
				s = d.Parameters
			}
			decls = append(decls, decl{d.Name, s})
		}
	}
	prompt := 0
	if si := req.SystemInstruction; si != nil {
		var texts []string
		for _, pt := range si.Parts {
			if pt.Text == nil {
				p.badRequest(c, "* GenerateContentRequest.system_instruction: only text parts are allowed")
				return
			}
			texts = append(texts, *pt.Text)
		}
		prompt += 3 + words(strings.Join(texts, " "))
	}
	lastUserText, lastToolText := "", ""
	lastIsTool := false
	for i, ct := range req.Contents {
		role := ct.Role
		if role == "" {
			role = "user"
		}
		if role != "user" && role != "model" {
			p.badRequest(c, fmt.Sprintf("Please use a valid role: user, model. (got %q in contents[%d])", ct.Role, i))
			return
		}
		if len(ct.Parts) == 0 {
			p.badRequest(c, fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.", i))
			return
		}
		var texts, results []string
		for j, pt := range ct.Parts {
			n := 0
			for _, set := range []bool{pt.Text != nil, pt.InlineData != nil, pt.FileData != nil, pt.FunctionCall != nil, pt.FunctionResponse != nil} {
				if set {
					n++
				}
			}
			where := fmt.Sprintf("contents[%d].parts[%d]", i, j)
			switch {
			case n != 1:
				p.badRequest(c, "* GenerateContentRequest."+where+".data: required oneof field 'data' must have one initialized field")
				return
			case pt.FunctionCall != nil && role != "model":
				p.badRequest(c, "* GenerateContentRequest."+where+": function calls are allowed in model turns only")
				return
			case pt.FunctionCall != nil && pt.FunctionCall.Name == "":
				p.badRequest(c, "* GenerateContentRequest."+where+".function_call.name: Name cannot be empty.")
				return
			case pt.FunctionResponse != nil && role != "user":
				p.badRequest(c, "* GenerateContentRequest."+where+": function responses are allowed in user turns only")
				return
			case pt.FunctionResponse != nil && (pt.FunctionResponse.Name == "" || len(bytes.TrimSpace(pt.FunctionResponse.Response)) == 0 || bytes.TrimSpace(pt.FunctionResponse.Response)[0] != '{'):
				p.badRequest(c, "* GenerateContentRequest."+where+".function_response: name and an object response are required")
				return
			case pt.InlineData != nil && (pt.InlineData.MimeType == "" || pt.InlineData.Data == ""):
				p.badRequest(c, "* GenerateContentRequest."+where+".inline_data: mime_type and data are required")
				return
			case pt.FileData != nil && pt.FileData.FileURI == "":
				p.badRequest(c, "* GenerateContentRequest."+where+".file_data.file_uri: file_uri is required")
				return
			}
			if s := partText(pt); s != "" {
				texts = append(texts, s)
			}
			if pt.FunctionResponse != nil {
				results = append(results, string(pt.FunctionResponse.Response))
			}
		}
		text := strings.Join(texts, " ")
		prompt += 3 + words(text)
		if role == "user" {
			lastIsTool = len(results) > 0
			if lastIsTool {
				lastToolText = strings.Join(results, " ")
			} else {
				lastUserText = text
			}
		}
	}
	var tool *decl
	if len(decls) > 0 && !lastIsTool {
		tool = &decls[0]
		if tc := req.ToolConfig; tc != nil && tc.FunctionCallingConfig != nil {
			fc := tc.FunctionCallingConfig
			switch fc.Mode {
			case "", "AUTO", "ANY", "VALIDATED":
			case "NONE":
				tool = nil
			default:
				p.badRequest(c, fmt.Sprintf("Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), %q", fc.Mode))
				return
			}
			if len(fc.AllowedFunctionNames) > 0 && tool != nil {
				tool = nil
				for k := range decls {
					if decls[k].name == fc.AllowedFunctionNames[0] {
						tool = &decls[k]
					}
				}
				if tool == nil {
					p.badRequest(c, "* GenerateContentRequest.tool_config.function_calling_config.allowed_function_names: function "+fc.AllowedFunctionNames[0]+" is not declared")
					return
				}
			}
		}
	}
	maxTokens := 0
	if g := req.GenerationConfig; g != nil && g.MaxOutputTokens != nil {
		maxTokens = *g.MaxOutputTokens
	}
	if c.beh.exactUsage && maxTokens <= 0 {
		p.badRequest(c, "fake: exact-usage needs generationConfig.maxOutputTokens")
		return
	}
	u := usageInfo{prompt: prompt, cached: c.beh.cached}
	if u.cached > u.prompt {
		u.prompt = u.cached
	}
	var text, args, finish string
	if tool != nil {
		args = schemaArgs(tool.schema)
		u.completion = toolCallTokens(args)
		finish = "STOP"
	} else {
		if lastIsTool {
			text = toolResultReply(c.pname, lastToolText)
		} else {
			text = echoReply(c.pname, lastUserText)
		}
		var cut bool
		text, cut = shapeText(text, maxTokens, c.beh.exactUsage)
		u.completion = words(text)
		finish = "STOP"
		if cut {
			finish = "MAX_TOKENS"
		}
	}
	if c.beh.exactUsage {
		u.completion = maxTokens
	}
	respID := c.id("fakeresp")
	usage := func(final bool) map[string]any {
		m := map[string]any{
			"promptTokenCount":    u.prompt,
			"totalTokenCount":     u.prompt,
			"promptTokensDetails": []any{map[string]any{"modality": "TEXT", "tokenCount": u.prompt}},
		}
		if u.cached > 0 {
			m["cachedContentTokenCount"] = u.cached
		}
		if final {
			m["candidatesTokenCount"] = u.completion
			m["totalTokenCount"] = u.prompt + u.completion
		}
		return m
	}
	response := func(parts []any, finish string, final bool) map[string]any {
		cand := map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "index": 0}
		if finish != "" {
			cand["finishReason"] = finish
		}
		return map[string]any{"candidates": []any{cand}, "usageMetadata": usage(final), "modelVersion": model, "responseId": respID}
	}
	var callPart map[string]any
	if tool != nil {
		callPart = map[string]any{"functionCall": map[string]any{"name": tool.name, "args": json.RawMessage(args)}}
	}
	if !stream {
		var parts []any
		if tool != nil {
			parts = []any{callPart}
		} else {
			parts = []any{map[string]any{"text": text}}
		}
		c.writeJSON(http.StatusOK, response(parts, finish, true))
		return
	}
	sw := c.startSSE("text/event-stream")
	if tool != nil {
		// Gemini streams a function call whole, in one chunk.
		if c.beh.streamError {
			sw.gemini(map[string]any{"candidates": []any{}, "usageMetadata": usage(false), "modelVersion": model, "responseId": respID})
			sw.gemini(gmErrorBody{Error: gmErrorInfo{Code: 503, Message: "The model is overloaded. Please try again later.", Status: "UNAVAILABLE"}})
			return
		}
		sw.gemini(response([]any{callPart}, finish, true))
		return
	}
	chunks := wordChunks(text)
	for i, piece := range chunks {
		last := i == len(chunks)-1
		f := ""
		if last {
			f = finish
		}
		sw.gemini(response([]any{map[string]any{"text": piece}}, f, last))
		if i == 0 && c.beh.streamError {
			sw.gemini(gmErrorBody{Error: gmErrorInfo{Code: 503, Message: "The model is overloaded. Please try again later.", Status: "UNAVAILABLE"}})
			return
		}
	}
	if len(chunks) == 0 {
		sw.gemini(response([]any{map[string]any{"text": ""}}, finish, true))
	}
}

// gemini writes one alt=sse event the way Gemini frames them (CRLF line
// ends), honouring cut-after like event.
func (sw *sseWriter) gemini(data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	_, _ = io.WriteString(sw.w, "data: "+string(b)+"\r\n\r\n")
	sw.written()
}

type gmEmbedRequest struct {
	Model                string    `json:"model"`
	Content              gmContent `json:"content"`
	TaskType             string    `json:"taskType"`
	Title                string    `json:"title"`
	OutputDimensionality *int      `json:"outputDimensionality"`
}

func (p geminiProvider) embed(c *call, model string, batch bool) {
	var reqs []gmEmbedRequest
	if batch {
		var b struct {
			Requests []gmEmbedRequest `json:"requests"`
		}
		if !p.decode(c, &b) {
			return
		}
		if len(b.Requests) == 0 {
			p.badRequest(c, "* BatchEmbedContentsRequest.requests: requests must not be empty")
			return
		}
		for i, r := range b.Requests {
			if r.Model != "models/"+model {
				p.badRequest(c, fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d].model: model must be models/%s, the model of the batch", i, model))
				return
			}
		}
		reqs = b.Requests
	} else {
		var r gmEmbedRequest
		if !p.decode(c, &r) {
			return
		}
		reqs = []gmEmbedRequest{r}
	}
	out := make([]any, len(reqs))
	for i, r := range reqs {
		var texts []string
		for _, pt := range r.Content.Parts {
			if pt.Text != nil {
				texts = append(texts, *pt.Text)
			}
		}
		if len(texts) == 0 {
			p.badRequest(c, "* EmbedContentRequest.content: content must have a text part")
			return
		}
		dims := embeddingDims
		if r.OutputDimensionality != nil {
			if *r.OutputDimensionality < 1 || *r.OutputDimensionality > 3072 {
				p.badRequest(c, "* EmbedContentRequest.output_dimensionality: must be between 1 and 3072")
				return
			}
			dims = *r.OutputDimensionality
		}
		out[i] = map[string]any{"values": Embedding(strings.Join(texts, " "), dims)}
	}
	if batch {
		c.writeJSON(http.StatusOK, map[string]any{"embeddings": out})
		return
	}
	c.writeJSON(http.StatusOK, map[string]any{"embedding": out[0]})
}

// geminiModels are listed by GET /v1beta/models.
var geminiModels = []struct{ id, name, method string }{
	{"gemini-2.5-flash", "Gemini 2.5 Flash", "generateContent"},
	{"gemini-2.5-pro", "Gemini 2.5 Pro", "generateContent"},
	{"gemini-embedding-001", "Gemini Embedding 001", "embedContent"},
}

func (geminiProvider) models(c *call) {
	data := make([]any, len(geminiModels))
	for i, m := range geminiModels {
		methods := []string{m.method, "countTokens"}
		if m.method == "generateContent" {
			methods = append(methods, "streamGenerateContent")
		} else {
			methods = append(methods, "batchEmbedContents")
		}
		data[i] = map[string]any{"name": "models/" + m.id, "displayName": m.name, "supportedGenerationMethods": methods}
	}
	c.writeJSON(http.StatusOK, map[string]any{"models": data})
}
