package bench

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/weir-ai/weir/config"
)

// ChatPath is the client request path the bench sends.
const ChatPath = "/v1/chat/completions"

// ClientKey is the client's bearer token for configs without client auth:
// it is only carried (and must be stripped upstream). A config with
// virtual keys names the key the bench presents in a directive comment,
// "# weirbench: client-key sk-weir-...", which must hash to one of its
// auth.keys.
const ClientKey = "sk-client-bench-0123456789abcdef"

// clientKeyDirective introduces the client key in a config's comments.
const clientKeyDirective = "# weirbench: client-key "

// answer is the assistant text of both canned upstream responses.
const answer = "Retries with exponential backoff are the right default here. Start at 200 ms, double on each " +
	"attempt up to a cap of 10 s, and add full jitter so that clients that failed together do not retry " +
	"together. Only retry idempotent operations or ones carrying an idempotency key; a POST that created " +
	"an order must not be replayed blindly. Respect Retry-After when the server sends it, and stop after " +
	"five attempts or a total budget of 30 s, whichever comes first. Finally, count retries as a metric: " +
	"a rising retry rate is often the first sign of an overloaded dependency."

// ChatRequest is the ~1.5 KB OpenAI chat request: a system prompt and
// three turns.
func ChatRequest(model string) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	req := struct {
		Model       string  `json:"model"`
		Messages    []msg   `json:"messages"`
		Temperature float64 `json:"temperature"`
		MaxTokens   int     `json:"max_tokens"`
		User        string  `json:"user"`
	}{
		Model: model,
		Messages: []msg{
			{"system", "You are a senior backend engineer reviewing designs for a payments platform. Answer " +
				"precisely and briefly, prefer concrete numbers over adjectives, and point out failure modes the " +
				"author did not consider. When you recommend a library or setting, say why in one sentence. " +
				"Never invent APIs; if you are unsure whether something exists, say so. The platform runs on " +
				"Kubernetes in two regions, services talk gRPC internally and HTTPS to third parties, and the " +
				"error budget is 0.1% of checkouts per month."},
			{"user", "Our checkout service calls three downstream APIs: inventory, pricing and the card " +
				"processor. Under load the card processor sometimes returns 503 for a few seconds. Today we fail " +
				"the whole checkout. What should the retry policy look like, and which of these calls are safe " +
				"to retry at all? We run about 400 checkouts per second at peak."},
			{"assistant", "Inventory reads and pricing lookups are idempotent and safe to retry. The card " +
				"charge is not, unless the processor supports idempotency keys; most do. Do you send one today, " +
				"and how long does a typical 503 episode last?"},
			{"user", "We do send an idempotency key per checkout attempt. Episodes last 2 to 8 seconds. " +
				"Please give concrete numbers for the backoff and the retry budget. The checkout p99 budget " +
				"is 2 seconds end to end."},
		},
		Temperature: 0.2,
		MaxTokens:   512,
		User:        "bench-user-42",
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// OpenAIResponse is an OpenAI chat.completion body.
func OpenAIResponse() []byte {
	return compact(`{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741569952,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [{
    "index": 0,
    "message": {"role": "assistant", "content": ` + quote(answer) + `, "refusal": null, "annotations": []},
    "logprobs": null,
    "finish_reason": "stop"
  }],
  "usage": {
    "prompt_tokens": 312, "completion_tokens": 142, "total_tokens": 454,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_06737a9306"
}`)
}

// AnthropicResponse is an Anthropic Messages API response body.
func AnthropicResponse() []byte {
	return compact(`{
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "model": "claude-sonnet-4-5-20250929",
  "content": [{"type": "text", "text": ` + quote(answer) + `}],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {"input_tokens": 312, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 142, "service_tier": "standard"}
}`)
}

// BedrockResponse is a Bedrock Runtime Converse response body.
func BedrockResponse() []byte {
	return compact(`{
  "output": {"message": {"role": "assistant", "content": [{"text": ` + quote(answer) + `}]}},
  "stopReason": "end_turn",
  "usage": {"inputTokens": 312, "outputTokens": 142, "totalTokens": 454},
  "metrics": {"latencyMs": 812}
}`)
}

// GeminiResponse is a Gemini generateContent response body.
func GeminiResponse() []byte {
	return compact(`{
  "candidates": [{
    "content": {"parts": [{"text": ` + quote(answer) + `}], "role": "model"},
    "finishReason": "STOP",
    "index": 0
  }],
  "usageMetadata": {
    "promptTokenCount": 312, "candidatesTokenCount": 142, "totalTokenCount": 454,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 312}]
  },
  "modelVersion": "gemini-2.5-flash",
  "responseId": "Zk3OaKDxLJ2oz7IP5K2_qQk"
}`)
}

// PromptTokens and CompletionTokens are the usage both responses report.
const (
	PromptTokens     = 312
	CompletionTokens = 142
)

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func compact(s string) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Profile is what one config file should make Weir do with the bench's
// request, and the canned upstream response in the backend's format.
type Profile struct {
	// Name is the config's base name ("openai", "anthropic").
	Name string `json:"name"`
	// Kind is "passthrough" or "translated".
	Kind          string `json:"kind"`
	ClientModel   string `json:"client_model"`
	Backend       string `json:"backend"`
	Provider      string `json:"provider"`
	UpstreamModel string `json:"upstream_model"`
	// UpstreamPath and Authority are what the upstream reply must set.
	UpstreamPath string `json:"upstream_path"`
	Authority    string `json:"authority"`
	// Credential is the backend key the upstream reply must send.
	Credential string `json:"-"`
	// SigV4 says the upstream reply must carry an AWS Signature Version 4
	// authorization (with AccessKeyID and Region) instead of a key.
	SigV4       bool   `json:"sigv4,omitempty"`
	AccessKeyID string `json:"-"`
	Region      string `json:"-"`
	// ClientKey is the bearer token the client presents: [ClientKey], or
	// the virtual key the config's directive names.
	ClientKey string `json:"-"`
	// VirtualKey says the config authenticates ClientKey as a virtual key.
	VirtualKey bool `json:"virtual_key,omitempty"`
	// LimitsStore is the config's limits store when it counts anything
	// ("memory" or "redis").
	LimitsStore string `json:"limits_store,omitempty"`
	// RewriteRequest and RewriteResponse say whether Weir must replace the
	// request body (upstream level) and the response body (router level).
	RewriteRequest  bool `json:"rewrite_request"`
	RewriteResponse bool `json:"rewrite_response"`

	Config       *config.Config `json:"-"`
	ConfigPath   string         `json:"config"`
	RequestBody  []byte         `json:"-"`
	ResponseBody []byte         `json:"-"`
}

// LoadProfile reads a bench config and derives the expectations for a
// request for model from it: the first backend of the model decides.
func LoadProfile(path, model string) (*Profile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseProfile(path, raw, model)
}

// ParseProfile is [LoadProfile] on config content.
func ParseProfile(path string, raw []byte, model string) (*Profile, error) {
	cfg, err := config.Parse(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var m *config.Model
	for i := range cfg.Models {
		if cfg.Models[i].Name == model {
			m = &cfg.Models[i]
		}
	}
	if m == nil || len(m.Backends) == 0 {
		return nil, fmt.Errorf("%s: no model %q with a backend", path, model)
	}
	b := cfg.Backend(m.Backends[0])
	u, err := url.Parse(b.BaseURL)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".yaml")
	p := &Profile{
		Name:          name,
		ClientModel:   model,
		Backend:       b.Name,
		Provider:      string(b.Provider),
		UpstreamModel: model,
		Authority:     u.Host,
		Config:        cfg,
		ConfigPath:    path,
		RequestBody:   ChatRequest(model),
		ClientKey:     ClientKey,
	}
	if err := p.clientKey(raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.ProviderModel != "" {
		p.UpstreamModel = m.ProviderModel
	}
	if b.Credential != nil {
		p.Credential = b.Credential.Key.Reveal()
	}
	base := strings.TrimRight(u.Path, "/")
	switch b.Provider {
	case "openai":
		p.Kind = "passthrough"
		p.UpstreamPath = base + "/chat/completions"
		p.ResponseBody = OpenAIResponse()
	case "anthropic":
		p.Kind = "translated"
		p.UpstreamPath = base + "/v1/messages"
		p.ResponseBody = AnthropicResponse()
		p.RewriteRequest, p.RewriteResponse = true, true
	case "bedrock":
		p.Kind = "translated"
		p.UpstreamPath = base + "/model/" + escapeAll(p.UpstreamModel) + "/converse"
		p.ResponseBody = BedrockResponse()
		p.RewriteRequest, p.RewriteResponse = true, true
		if b.AWS == nil || b.AWS.AccessKeyID == "" || b.AWS.Region == "" {
			return nil, fmt.Errorf("%s: the bench needs static aws keys and aws.region for bedrock", path)
		}
		p.SigV4, p.AccessKeyID, p.Region = true, b.AWS.AccessKeyID.Reveal(), b.AWS.Region
	case "gemini":
		p.Kind = "translated"
		p.UpstreamPath = base + "/v1beta/models/" + url.PathEscape(p.UpstreamModel) + ":generateContent"
		p.ResponseBody = GeminiResponse()
		p.RewriteRequest, p.RewriteResponse = true, true
	default:
		return nil, fmt.Errorf("%s: the bench has no canned response for provider %q", path, b.Provider)
	}
	if p.UpstreamModel != model {
		// Weir rewrites the model name in the request body.
		p.RewriteRequest = true
	}
	if p.VirtualKey || cfg.Auth.Global != nil {
		p.LimitsStore = cmp.Or(cfg.Limits.Store, "memory")
	}
	return p, nil
}

// clientKey reads the client-key directive. A config with virtual keys
// must name one of them; a config without must not name any.
func (p *Profile) clientKey(raw []byte) error {
	var key string
	for line := range strings.Lines(string(raw)) {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), clientKeyDirective); ok {
			if key != "" {
				return fmt.Errorf("more than one %q line", clientKeyDirective)
			}
			key = strings.TrimSpace(k)
		}
	}
	keys := p.Config.Auth.Keys
	switch {
	case key == "" && len(keys) > 0:
		return fmt.Errorf("auth.keys is set but no %q line names the key the bench presents", clientKeyDirective)
	case key == "":
		return nil
	}
	sum := sha256.Sum256([]byte(key))
	h := hex.EncodeToString(sum[:])
	if !slices.ContainsFunc(keys, func(k config.KeyConfig) bool { return k.Hash == h }) {
		return fmt.Errorf("the client key of %q hashes to %s, which is not in auth.keys", clientKeyDirective, h)
	}
	p.ClientKey, p.VirtualKey = key, true
	return nil
}

// escapeAll path-escapes everything but RFC 3986 unreserved characters, as
// the AWS SDKs escape a Bedrock model id (':' becomes %3A).
func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
