package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

var weatherTool = openai.ChatCompletionToolUnionParam{
	OfFunction: &openai.ChatCompletionFunctionToolParam{
		Function: openai.FunctionDefinitionParam{
			Name:        "get_weather",
			Description: openai.String("Weather for a city"),
			Parameters: openai.FunctionParameters{
				"type":       "object",
				"properties": map[string]any{"city": map[string]any{"type": "string"}},
				"required":   []string{"city"},
			},
		},
	},
}

func TestOpenAIGoSDK(t *testing.T) {
	st := startStack(t)
	client := openai.NewClient(option.WithBaseURL(st.URL+"/v1"), option.WithAPIKey("sk-any"), option.WithMaxRetries(0))
	ctx := context.Background()
	// Every chat model of the embedded default config, one per provider.
	// OpenAI-format backends (OpenAI, Azure) pass the provider's model name
	// through, as OpenAI itself answers with a dated snapshot name;
	// translated ones answer with the name the client used.
	for _, tc := range []struct{ model, replyModel string }{
		{"gpt-4o-mini", "gpt-4o-mini"},
		{"claude-sonnet-4-5", "claude-sonnet-4-5"},
		{"azure-gpt-4o-mini", "gpt-4o-mini"},
		{"gemini-2.5-flash", "gemini-2.5-flash"},
		{"bedrock-claude-sonnet-4-5", "bedrock-claude-sonnet-4-5"},
		{"bedrock-nova-lite", "bedrock-nova-lite"},
		{"bedrock-invoke-claude-sonnet-4-5", "bedrock-invoke-claude-sonnet-4-5"},
		{"vertex-gemini-2.5-flash", "vertex-gemini-2.5-flash"},
		{"vertex-claude-sonnet-4-5", "vertex-claude-sonnet-4-5"},
	} {
		model := tc.model
		t.Run(model+"/chat", func(t *testing.T) {
			r, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage("hello there")},
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Model != tc.replyModel || !strings.Contains(r.Choices[0].Message.Content, "You said: hello there") || r.Choices[0].FinishReason != "stop" {
				t.Errorf("reply = %+v", r)
			}
			if r.Usage.PromptTokens == 0 || r.Usage.CompletionTokens == 0 || r.Usage.TotalTokens != r.Usage.PromptTokens+r.Usage.CompletionTokens {
				t.Errorf("usage = %+v", r.Usage)
			}
		})
		t.Run(model+"/stream", func(t *testing.T) {
			stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
				Model:         model,
				Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream it")},
				StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
			})
			acc := openai.ChatCompletionAccumulator{}
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(acc.Choices[0].Message.Content, "You said: stream it") || acc.Usage.CompletionTokens == 0 {
				t.Errorf("accumulated = %+v usage %+v", acc.Choices, acc.Usage)
			}
		})
		t.Run(model+"/tools", func(t *testing.T) {
			r, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("weather in Paris?")},
				Tools:    []openai.ChatCompletionToolUnionParam{weatherTool},
			})
			if err != nil {
				t.Fatal(err)
			}
			calls := r.Choices[0].Message.ToolCalls
			if len(calls) != 1 || calls[0].Function.Name != "get_weather" || r.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("reply = %+v", r.Choices[0])
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(calls[0].Function.Arguments), &args); err != nil || args["city"] != "test" {
				t.Errorf("arguments = %q", calls[0].Function.Arguments)
			}
		})
		t.Run(model+"/upstream 429", func(t *testing.T) {
			_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
			}, option.WithHeader("x-fake-behavior", "status=429"))
			var apiErr *openai.Error
			// OpenAI passthrough keeps OpenAI's own body (type "requests",
			// code "rate_limit_exceeded"); the others are translated.
			if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Message == "" || (apiErr.Code != "rate_limit_exceeded" && apiErr.Type != "rate_limit_error") {
				t.Fatalf("err = %v", err)
			}
		})
	}
	for _, model := range []string{"text-embedding-3-small", "azure-text-embedding-3-small", "gemini-embedding-001", "bedrock-titan-embed-text-v2"} {
		t.Run(model+"/embeddings", func(t *testing.T) {
			in := openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}}
			want := 2
			if strings.HasPrefix(model, "bedrock-titan") {
				// Titan embeds one text per call.
				in, want = openai.EmbeddingNewParamsInputUnion{OfString: openai.String("a")}, 1
			}
			r, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: model, Input: in})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Data) != want || len(r.Data[0].Embedding) == 0 {
				t.Errorf("embeddings = %+v", r)
			}
		})
	}
	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, m := range page.Data {
			ids[m.ID] = true
		}
		for _, want := range []string{"gpt-4o-mini", "claude-sonnet-4-5", "text-embedding-3-small", "azure-gpt-4o-mini", "gemini-2.5-flash", "bedrock-claude-sonnet-4-5", "bedrock-nova-lite"} {
			if !ids[want] {
				t.Errorf("%s missing from %v", want, ids)
			}
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		_, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "nope",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Fatalf("err = %v", err)
		}
	})
}
