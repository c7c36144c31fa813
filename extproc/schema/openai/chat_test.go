package openai

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/weir-ai/weir/extproc/errs"
)

func TestChatChecks(t *testing.T) {
	tests := []struct {
		body string
		want string // "limit N set" or the error text
	}{
		{`{}`, "limit 0 false"},
		{`{"max_tokens":10}`, "limit 10 true"},
		{`{"max_tokens":10,"max_completion_tokens":20}`, "limit 20 true"},
		{`{"max_tokens":null,"max_completion_tokens":null}`, "limit 0 false"},
		{`{"max_completion_tokens":0}`, "max_completion_tokens must be a positive integer"},
		{`{"max_tokens":1.5}`, "max_tokens must be a positive integer"},
		{`{"max_tokens":3000000000}`, "max_tokens must be a positive integer"},
	}
	for _, tc := range tests {
		var c Chat
		ReadChat(gjson.Parse(tc.body), &c)
		n, set, err := c.OutputLimit()
		got := fmt.Sprintf("limit %d %v", n, set)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %s, want %s", tc.body, got, tc.want)
		}
	}
	for body, want := range map[string]string{
		`{"messages":[]}`:               "",
		`{}`:                            "messages is required",
		`{"messages":{}}`:               "messages must be an array",
		`{"messages":[],"stream":1}`:    "stream must be a boolean",
		`{"messages":[],"stream":null}`: "",
	} {
		var c Chat
		ReadChat(gjson.Parse(body), &c)
		err := errors.Join(c.CheckMessages(), c.CheckStream())
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

func TestStops(t *testing.T) {
	for stop, want := range map[string]string{
		`null`:         "",
		`"x"`:          `"x"`,
		`""`:           "",
		`["a","","b"]`: `"a","b"`,
		`["a",1]`:      "error",
		`5`:            "error",
	} {
		var got []string
		err := Stops(gjson.Parse(stop), func(s gjson.Result) { got = append(got, s.Raw) })
		g := strings.Join(got, ",")
		if err != nil {
			if !errors.Is(err, errs.ErrInvalidRequest) {
				t.Errorf("%s: %v is not ErrInvalidRequest", stop, err)
			}
			g = "error"
		}
		if g != want {
			t.Errorf("Stops(%s) = %s, want %s", stop, g, want)
		}
	}
}

func TestReadTools(t *testing.T) {
	for tools, want := range map[string]string{
		`[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}},{"function":{"name":"g"}}]`: `0 "f" "d" {"type":"object"}|1 "g"  `,
		`{}`:                         "tools must be an array",
		`[1]`:                        "tools[0] must be an object",
		`[{"type":"web_search"}]`:    `tools[0].type "web_search"`,
		`[{"function":{"name":""}}]`: "tools[0].function.name is required",
		`[{"function":{"name":"f","description":3}}]`:  "tools[0].function.description must be a string",
		`[{"function":{"name":"f","parameters":"x"}}]`: "tools[0].function.parameters must be an object",
	} {
		var got []string
		err := ReadTools(gjson.Parse(tools), func(n int, name, desc, params gjson.Result) {
			got = append(got, fmt.Sprintf("%d %s %s %s", n, name.Raw, desc.Raw, params.Raw))
		})
		g := strings.Join(got, "|")
		if err != nil {
			g = err.Error()
		}
		if !strings.Contains(g, want) {
			t.Errorf("ReadTools(%s) = %s, want %s", tools, g, want)
		}
	}
}

func TestReadToolChoice(t *testing.T) {
	for choice, want := range map[string]string{
		``:           "0 ",
		`null`:       "0 ",
		`"auto"`:     "1 ",
		`"required"`: "2 ",
		`"none"`:     "3 ",
		`{"type":"function","function":{"name":"f"}}`: `4 "f"`,
		`"any"`:                             `tool_choice "any" is not one of`,
		`{"type":"custom"}`:                 `tool_choice type "custom"`,
		`{"type":"function","function":{}}`: "tool_choice.function.name is required",
		`7`:                                 "tool_choice must be a string or an object",
	} {
		mode, name, err := ReadToolChoice(gjson.Parse(choice))
		g := fmt.Sprintf("%d %s", mode, name.Raw)
		if err != nil {
			g = err.Error()
		}
		if !strings.Contains(g, want) {
			t.Errorf("ReadToolChoice(%s) = %s, want %s", choice, g, want)
		}
	}
	for choice, ok := range map[string]bool{``: true, `"auto"`: true, `"none"`: true, `"required"`: false, `{}`: false} {
		if err := CheckChoiceWithoutTools(gjson.Parse(choice)); (err == nil) != ok {
			t.Errorf("CheckChoiceWithoutTools(%s) = %v", choice, err)
		}
	}
}

func TestCheckN(t *testing.T) {
	for body, want := range map[string]string{
		`{}`:        "",
		`{"n":1}`:   "",
		`{"n":0}`:   "n must be a positive integer",
		`{"n":1.5}`: "n must be a positive integer",
		`{"n":"1"}`: "n must be a positive integer",
		`{"n":2}`:   "n > 1 (one choice only)",
	} {
		var c Chat
		ReadChat(gjson.Parse(body), &c)
		err := c.CheckN("one choice only")
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}
