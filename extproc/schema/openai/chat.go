package openai

import (
	"math"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/provider/jsonw"
)

// Chat holds the top-level fields of a chat completion request that
// translators read, each absent when the client did not send it. JSON
// leaves repeated keys to the reader; like the providers, the last wins.
type Chat struct {
	Model, Messages, Tools, ToolChoice, Parallel      gjson.Result
	MaxTokens, MaxCompletionTokens, Stop, Temperature gjson.Result
	TopP, User, Stream, N, Seed, PresencePenalty      gjson.Result
	FrequencyPenalty, ResponseFormat                  gjson.Result
}

// ReadChat reads the fields of root, a chat request object, in one pass.
func ReadChat(root gjson.Result, c *Chat) {
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			c.Model = v
		case "messages":
			c.Messages = v
		case "tools":
			c.Tools = v
		case "tool_choice":
			c.ToolChoice = v
		case "parallel_tool_calls":
			c.Parallel = v
		case "max_tokens":
			c.MaxTokens = v
		case "max_completion_tokens":
			c.MaxCompletionTokens = v
		case "stop":
			c.Stop = v
		case "temperature":
			c.Temperature = v
		case "top_p":
			c.TopP = v
		case "user":
			c.User = v
		case "stream":
			c.Stream = v
		case "n":
			c.N = v
		case "seed":
			c.Seed = v
		case "presence_penalty":
			c.PresencePenalty = v
		case "frequency_penalty":
			c.FrequencyPenalty = v
		case "response_format":
			c.ResponseFormat = v
		}
		return true
	})
}

// CheckMessages checks that messages is there and an array.
func (c *Chat) CheckMessages() error {
	if !jsonw.Present(c.Messages) {
		return Invalid("messages is required")
	}
	if !c.Messages.IsArray() {
		return Invalid("messages must be an array")
	}
	return nil
}

// CheckStream checks that stream, if sent, is a boolean.
func (c *Chat) CheckStream() error {
	if jsonw.Present(c.Stream) && c.Stream.Type != gjson.True && c.Stream.Type != gjson.False {
		return Invalid("stream must be a boolean")
	}
	return nil
}

// IsPositiveInt reports whether r is an integer from 1 to MaxInt32.
func IsPositiveInt(r gjson.Result) bool {
	return r.Type == gjson.Number && r.Num == math.Trunc(r.Num) && r.Num >= 1 && r.Num <= math.MaxInt32
}

// OutputLimit is the output token limit the client set:
// max_completion_tokens, or the older max_tokens; ok is false when it set
// neither.
func (c *Chat) OutputLimit() (n int64, ok bool, err error) {
	mt, name := c.MaxCompletionTokens, "max_completion_tokens"
	if !jsonw.Present(mt) {
		mt, name = c.MaxTokens, "max_tokens"
	}
	if !jsonw.Present(mt) {
		return 0, false, nil
	}
	if !IsPositiveInt(mt) {
		return 0, false, Invalid("%s must be a positive integer", name)
	}
	return int64(mt.Num), true, nil
}

// Stops calls fn with each non-empty stop sequence of stop, which is a
// string or an array of strings.
func Stops(stop gjson.Result, fn func(s gjson.Result)) error {
	switch {
	case !jsonw.Present(stop):
		return nil
	case stop.Type == gjson.String:
		if stop.Str != "" {
			fn(stop)
		}
		return nil
	case stop.IsArray():
		return Each(stop, func(_ int, s gjson.Result) error {
			if s.Type != gjson.String {
				return Invalid("stop must be a string or an array of strings")
			}
			if s.Str != "" {
				fn(s)
			}
			return nil
		})
	}
	return Invalid("stop must be a string or an array of strings")
}

// ReadTools calls fn with each function tool of tools (present and an
// array, else an error), checked: name is a non-empty JSON string, desc a
// JSON string or absent, params an object or absent.
func ReadTools(tools gjson.Result, fn func(n int, name, desc, params gjson.Result)) error {
	if !tools.IsArray() {
		return Invalid("tools must be an array")
	}
	return Each(tools, func(n int, t gjson.Result) error {
		if !t.IsObject() {
			return Invalid("tools[%d] must be an object", n)
		}
		if typ := t.Get("type"); jsonw.Present(typ) && typ.Str != "function" {
			return Unsupported("tools[%d].type %q (only function tools)", n, typ.String())
		}
		f := t.Get("function")
		name, desc, params := f.Get("name"), f.Get("description"), f.Get("parameters")
		if name.Type != gjson.String || name.Str == "" {
			return Invalid("tools[%d].function.name is required", n)
		}
		if jsonw.Present(desc) && desc.Type != gjson.String {
			return Invalid("tools[%d].function.description must be a string", n)
		}
		if jsonw.Present(params) && !params.IsObject() {
			return Invalid("tools[%d].function.parameters must be an object", n)
		}
		fn(n, name, desc, params)
		return nil
	})
}

// Choice is what tool_choice asks for.
type Choice uint8

const (
	ChoiceAbsent   Choice = iota // tool_choice not sent
	ChoiceAuto                   // "auto"
	ChoiceRequired               // "required": some tool
	ChoiceNone                   // "none"
	ChoiceFunction               // {"type":"function","function":{"name":...}}
)

// ReadToolChoice reads tool_choice; name is the function's (a non-empty
// JSON string) for ChoiceFunction.
func ReadToolChoice(choice gjson.Result) (c Choice, name gjson.Result, err error) {
	switch {
	case !jsonw.Present(choice):
		return ChoiceAbsent, name, nil
	case choice.Type == gjson.String:
		switch choice.Str {
		case "auto":
			return ChoiceAuto, name, nil
		case "required":
			return ChoiceRequired, name, nil
		case "none":
			return ChoiceNone, name, nil
		}
		return 0, name, Invalid("tool_choice %q is not one of auto, required, none", choice.Str)
	case choice.IsObject():
		if typ := choice.Get("type"); typ.Str != "function" {
			return 0, name, Unsupported("tool_choice type %q", typ.String())
		}
		name = choice.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return 0, name, Invalid("tool_choice.function.name is required")
		}
		return ChoiceFunction, name, nil
	}
	return 0, name, Invalid("tool_choice must be a string or an object")
}

// CheckChoiceWithoutTools refuses a tool_choice that needs tools in a
// request that has none: "auto" and "none" need none.
func CheckChoiceWithoutTools(choice gjson.Result) error {
	if jsonw.Present(choice) && !(choice.Type == gjson.String && (choice.Str == "none" || choice.Str == "auto")) {
		return Invalid("tool_choice requires tools")
	}
	return nil
}

// ParseObject validates body as JSON and returns its root, which must be
// an object. The result points into body.
func ParseObject(body []byte) (gjson.Result, error) {
	js := jsonw.View(body)
	if !gjson.Valid(js) {
		return gjson.Result{}, Invalid("body is not valid JSON")
	}
	root := gjson.Parse(js)
	if !root.IsObject() {
		return gjson.Result{}, Invalid("body must be a JSON object")
	}
	return root, nil
}

// CheckN refuses an n other than 1: a positive integer is required, and
// more than one choice is the translation's limit, named by why.
func (c *Chat) CheckN(why string) error {
	if !jsonw.Present(c.N) {
		return nil
	}
	if c.N.Type != gjson.Number || c.N.Num != math.Trunc(c.N.Num) || c.N.Num < 1 {
		return Invalid("n must be a positive integer")
	}
	if c.N.Num > 1 {
		return Unsupported("n > 1 (%s)", why)
	}
	return nil
}
