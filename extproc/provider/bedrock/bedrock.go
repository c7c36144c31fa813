// Package bedrock translates between OpenAI chat completions and embeddings
// (Weir's canonical shape) and Amazon Bedrock Runtime, and signs every
// upstream request with AWS Signature Version 4.
//
// Operations (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_Operations_Amazon_Bedrock_Runtime.html):
//
//   - Chat goes to Converse (POST /model/{modelId}/converse) or, when the
//     client asked for a stream, ConverseStream (/converse-stream).
//   - Chat with an upstream model named "invoke:<id>", where <id> is an
//     Anthropic model (anthropic.* or <geo>.anthropic.*), goes to InvokeModel
//     (/invoke, /invoke-with-response-stream) with Anthropic's Messages body
//     ("anthropic_version": "bedrock-2023-05-31", no model field), built by
//     extproc/schema/messages. The prefix is Weir's, never sent.
//   - Embeddings go to InvokeModel: amazon.titan-embed-* ({"inputText"}, one
//     input per request) and cohere.embed-* ({"texts","input_type"}).
//   - Anthropic's Messages API in its own format (provider.EndpointMessages,
//     native passthrough; [provider.Native] serves it for Anthropic model
//     ids, with or without the invoke: prefix) goes to InvokeModel
//     (/invoke, or /invoke-with-response-stream for a stream). The client's
//     body loses "model" and "stream" (the path and the operation say
//     them), gains "anthropic_version": "bedrock-2023-05-31" unless it has
//     one, and the client's anthropic-beta header becomes the
//     "anthropic_beta" array of beta names, as InvokeModel takes it;
//     everything else passes untouched. "container" and file_id sources
//     are refused as for Anthropic (extproc/schema/messages). The reply is
//     Anthropic's message, passed with the client's model name and exact
//     usage (input + cache reads + cache writes); each stream chunk's
//     PayloadPart bytes become the SSE event "event: <type>\ndata: <json>",
//     and an exception frame an Anthropic error event (throttlingException
//     rate_limit_error, serviceUnavailableException overloaded_error,
//     validationException invalid_request_error, modelTimeoutException
//     timeout_error, others api_error). A stream that ends without
//     message_stop is an error wrapping errs.ErrUpstreamBadReply.
//
// modelId is path-escaped as the AWS SDKs do (everything but unreserved
// characters, so ':' and the '/' of ARNs become %3A and %2F).
//
// Bodies are read with gjson and written by appending to one buffer, as in
// extproc/schema/messages. Malformed client requests become errors
// wrapping errs.ErrInvalidRequest (errs.ErrUnsupported for features
// Bedrock lacks); malformed replies wrap errs.ErrUpstreamBadReply.
//
// Choices where OpenAI and Converse do not line up:
//
//   - system/developer messages become the top-level "system" text blocks;
//     consecutive messages of one role are merged (Converse wants
//     alternation); tool messages become toolResult blocks of a user turn.
//   - Images must be base64 data: URLs of png, jpeg, gif or webp; http(s)
//     URLs are ErrUnsupported (Converse takes bytes or S3 locations only).
//     A base64 PDF file part becomes a document block. Audio is unsupported.
//   - temperature is clamped to 0..1 (the range of most Bedrock models);
//     max_completion_tokens wins over max_tokens; neither is required.
//   - tool_choice "auto"/"required"/{function} map to toolChoice auto/any/
//     tool. "none" has no Converse equivalent: tools are dropped, unless the
//     conversation already holds tool calls (Converse then needs the tool
//     config), in which case they are sent without a toolChoice.
//   - Responses have no id; "chatcmpl-bedrock" is used (streams use
//     "chatcmpl-" + the request id). reasoningContent text is returned as
//     "reasoning_content". stopReason end_turn/stop_sequence → stop,
//     tool_use → tool_calls, max_tokens/model_context_window_exceeded →
//     length, guardrail_intervened/content_filtered → content_filter.
//   - Usage: Bedrock's inputTokens excludes cache reads and writes, so
//     prompt tokens are inputTokens + cacheReadInputTokens +
//     cacheWriteInputTokens (as for Anthropic).
//   - Streams arrive as application/vnd.amazon.eventstream frames; see
//     [Translator.IsStreamContentType]. A stream cut before messageStop ends
//     with an OpenAI error event and [DONE]; exception frames become an
//     error event and [DONE].
//   - Error bodies are {"message": "..."}; the HTTP status (400 validation,
//     403 access denied, 404 not found, 408 model timeout, 424 model error,
//     429 throttling, 500 internal, 503 unavailable / model not ready) picks
//     the OpenAI type and code. The x-amzn-ErrorType header is not seen by
//     TranslateResponse; the status carries the same information.
//
// Credentials: static keys from config.Backend.AWS, or else the AWS default
// chain (environment, web identity, shared files, container/instance role).
// Either way they sit behind an aws.CredentialsCache: the provider is called
// once and then only when temporary credentials near expiry, never per
// request. Default-chain credentials are fetched in the background as soon
// as the backend is configured. The cache outlives config reloads while the
// backend's name and aws settings stay the same
// (extproc/provider/credsource); the default chain is therefore read again
// only when they change. A request waits for a refresh at most
// provider.CredentialTimeout; a failure is a generic 503 for the client
// (errs.CredentialError) and the reason goes to the server's log.
package bedrock

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/extproc/provider"
	"github.com/weir-ai/weir/extproc/provider/credsource"
)

// ForwardHeaders are the client headers Bedrock gets: not Accept, which
// Bedrock reads as the reply's content type (InvokeModel's accept
// parameter), so Weir's translation, not the client, decides it. x-amz-*
// belong to Weir's signature.
var ForwardHeaders = []string{"user-agent"}

// AnthropicVersion is the anthropic_version InvokeModel bodies carry
// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html).
const AnthropicVersion = "bedrock-2023-05-31"

// InvokePrefix selects InvokeModel with Anthropic's Messages body.
const InvokePrefix = "invoke:"

// SigningName is the SigV4 service name of Bedrock Runtime.
const SigningName = "bedrock"

// EventStreamContentType is the content type of Bedrock streams.
const EventStreamContentType = "application/vnd.amazon.eventstream"

// now is the clock for signatures and "created" fields; tests replace it.
var now = time.Now

type translator struct {
	backend string // for credential errors
	host    string // signed host, from the base URL
	prefix  string // base URL path, without trailing slash
	region  string
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	// credTimeout bounds a request's wait for credentials.
	credTimeout time.Duration
}

// awsSource is a pooled credential cache, with the region the default
// chain found.
type awsSource struct {
	creds  aws.CredentialsProvider
	region string
}

// Close is a no-op: the SDK's cache runs nothing in the background, and
// the warm-up fetch ends on its own deadline.
func (*awsSource) Close() {}

// Translator is the Bedrock translator's exported surface beyond
// provider.Translator.
type Translator interface {
	provider.Translator
	provider.StreamContentTyper
}

var _ Translator = (*translator)(nil)

// New builds a Bedrock translator for a backend.
func New(b *config.Backend) (provider.Translator, error) { return NewShared(b, nil) }

// NewShared builds a Bedrock translator whose credential cache comes from
// creds: the running cache when the backend's aws settings are unchanged.
func NewShared(b *config.Backend, creds *credsource.Lease) (provider.Translator, error) {
	if b == nil {
		return nil, errors.New("bedrock: no backend")
	}
	u, err := url.Parse(b.BaseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("bedrock: base_url %q must be https://bedrock-runtime.<region>.amazonaws.com", b.BaseURL)
	}
	t := &translator{backend: b.Name, host: u.Host, prefix: strings.TrimRight(u.Path, "/"), signer: v4.NewSigner(),
		credTimeout: provider.CredentialTimeout}
	var a config.AWSAuth
	if b.AWS != nil {
		a = *b.AWS
	}
	t.region = a.Region
	if t.region == "" {
		t.region = regionFromHost(u.Hostname())
	}
	var (
		id    string
		build func() (*awsSource, error)
	)
	switch {
	case a.AccessKeyID != "" || a.SecretAccessKey != "":
		if a.AccessKeyID == "" || a.SecretAccessKey == "" {
			return nil, errors.New("bedrock: aws.access_key_id and aws.secret_access_key must be set together")
		}
		id = credsource.Identity("bedrock-static", a.AccessKeyID.Reveal(), a.SecretAccessKey.Reveal(), a.SessionToken.Reveal())
		build = func() (*awsSource, error) {
			return &awsSource{creds: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
				a.AccessKeyID.Reveal(), a.SecretAccessKey.Reveal(), a.SessionToken.Reveal()))}, nil
		}
	default:
		// The region picks the STS endpoint web identity uses.
		id = credsource.Identity("bedrock-default-chain", t.region)
		build = func() (*awsSource, error) { return defaultChain(t.region) }
	}
	src, err := credsource.Get(creds, credsource.Key{Backend: b.Name, Identity: id}, build)
	if err != nil {
		return nil, err
	}
	t.creds = src.creds
	if t.region == "" {
		t.region = src.region
	}
	if t.region == "" {
		return nil, fmt.Errorf("bedrock: no region: set aws.region, use a bedrock-runtime.<region>.amazonaws.com base_url or set AWS_REGION")
	}
	return t, nil
}

// defaultChain loads the AWS default credential chain and starts fetching
// its credentials off the request path.
func defaultChain(region string) (*awsSource, error) {
	opts := []func(*awsconfig.LoadOptions) error{}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("bedrock: loading the AWS default configuration: %w", err)
	}
	if cfg.Credentials == nil {
		return nil, errors.New("bedrock: no AWS credentials: set aws.access_key_id/secret_access_key or configure the AWS default credential chain")
	}
	creds := cfg.Credentials
	if _, ok := creds.(*aws.CredentialsCache); !ok {
		creds = aws.NewCredentialsCache(creds)
	}
	// Warm the cache off the request path, with a deadline of its own.
	go func(p aws.CredentialsProvider) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = p.Retrieve(ctx)
	}(creds)
	return &awsSource{creds: creds, region: cfg.Region}, nil
}

// regionFromHost reads <region> from bedrock-runtime[-fips].<region>.amazonaws.com[.cn].
func regionFromHost(h string) string {
	parts := strings.Split(h, ".")
	if len(parts) >= 4 && strings.HasPrefix(parts[0], "bedrock-runtime") && parts[2] == "amazonaws" {
		return parts[1]
	}
	return ""
}

// IsStreamContentType reports whether a 2xx response is a stream.
func (t *translator) IsStreamContentType(ct string) bool {
	return strings.HasPrefix(ct, EventStreamContentType) || strings.HasPrefix(ct, "text/event-stream")
}
