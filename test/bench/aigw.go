package bench

// Envoy AI Gateway (github.com/envoyproxy/ai-gateway, "AIGW") as a third
// server kind: its extproc binary, built by the user from AIGW's own
// repository, fed the message shape AIGW's controller configures Envoy to
// send. Nothing of AIGW is imported or vendored; the shape below is written
// down from its source (commit c217da8a5395, cited per item) and checked
// against the running binary by the strict driver.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/tidwall/gjson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"
)

// AIGW's header and attribute names (internal/internalapi/internalapi.go).
const (
	aigwInternalReqID = "x-ai-eg-internal-req-id" // server.go internalReqIDHeader
	aigwModel         = "x-ai-eg-model"           // internalapi.ModelNameHeaderKeyDefault
	aigwOriginalPath  = "x-ai-eg-original-path"   // internalapi.OriginalPathHeader
	envoyOriginalPath = "x-envoy-original-path"   // internalapi.EnvoyOriginalPathHeader
	// The upstream filter's request_attributes (maybeModifyCluster).
	aigwAttrHostBackend    = "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']"
	aigwAttrClusterBackend = "xds.cluster_metadata.filter_metadata['aigateway.envoy.io']['per_route_rule_backend_name']"
	aigwAttrUpstreamHost   = "xds.upstream_host_metadata.filter_metadata['aigateway.envoy.io']['upstream_host']"
	aigwAttrRouteName      = "xds.route_metadata.filter_metadata['aigateway.envoy.io']['aigw_route_name']"
	// AIGWRouteName is the route name the bench presents (AIGW's
	// controller uses "namespace/name" of the AIGatewayRoute).
	AIGWRouteName = "default/weirbench"
	// aigwUUIDLen is the length of the UUID AIGW appends to x-request-id
	// to form the internal request id (server.go Process, uuid.NewString).
	aigwUUIDLen = 36
)

// AIGWRouterFilter is the router-level ext_proc filter AIGW's extension
// server inserts into every listener (internal/extensionserver/
// post_translate_modify.go, Server.insertRouterLevelAIGatewayExtProc): no
// gRPC initial metadata, no attributes, headers and buffered bodies both
// ways, trailers skipped, mode override allowed (used only to switch a
// streaming response to STREAMED, processor_impl.go
// upstreamProcessor.ProcessResponseHeaders; the bench's request is not
// streaming).
func AIGWRouterFilter() *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		MetadataOptions: &extprocfilterv3.MetadataOptions{ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{"io.envoy.ai_gateway"}}},
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:   extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocfilterv3.ProcessingMode_BUFFERED,
			RequestTrailerMode:  extprocfilterv3.ProcessingMode_SKIP,
			ResponseHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
			ResponseBodyMode:    extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SKIP,
		},
		AllowModeOverride: true,
	}
}

// AIGWUpstreamFilter is the upstream-level ext_proc filter AIGW's
// extension server adds to every AI backend cluster (post_translate_modify.go,
// Server.maybeModifyCluster): request headers only (the body is taken from
// the router-level processor's memory and replaced with
// CONTINUE_AND_REPLACE), nothing on the response, and four xDS metadata
// attributes that name the backend, its host and the route.
func AIGWUpstreamFilter() *extprocfilterv3.ExternalProcessor {
	return &extprocfilterv3.ExternalProcessor{
		MetadataOptions:   &extprocfilterv3.MetadataOptions{ReceivingNamespaces: &extprocfilterv3.MetadataOptions_MetadataNamespaces{Untyped: []string{"io.envoy.ai_gateway"}}},
		AllowModeOverride: true,
		RequestAttributes: []string{aigwAttrHostBackend, aigwAttrClusterBackend, aigwAttrUpstreamHost, aigwAttrRouteName},
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestHeaderMode:  extprocfilterv3.ProcessingMode_SEND,
			RequestBodyMode:    extprocfilterv3.ProcessingMode_NONE,
			ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
			ResponseBodyMode:   extprocfilterv3.ProcessingMode_NONE,
		},
	}
}

// AIGWPhases turns a processing mode into the request and response
// messages sent, refusing what the AIGW driver does not play.
func AIGWPhases(pm *extprocfilterv3.ProcessingMode) (req, resp []Phase, err error) {
	hdr := func(m extprocfilterv3.ProcessingMode_HeaderSendMode, ph Phase, dst *[]Phase) {
		switch m {
		case extprocfilterv3.ProcessingMode_SEND, extprocfilterv3.ProcessingMode_DEFAULT:
			*dst = append(*dst, ph)
		case extprocfilterv3.ProcessingMode_SKIP:
		default:
			err = errors.Join(err, fmt.Errorf("%s mode %s not supported", ph, m))
		}
	}
	body := func(m extprocfilterv3.ProcessingMode_BodySendMode, ph Phase, dst *[]Phase) {
		switch m {
		case extprocfilterv3.ProcessingMode_BUFFERED:
			*dst = append(*dst, ph)
		case extprocfilterv3.ProcessingMode_NONE:
		default:
			err = errors.Join(err, fmt.Errorf("%s mode %s not supported", ph, m))
		}
	}
	hdr(pm.GetRequestHeaderMode(), RequestHeaders, &req)
	body(pm.GetRequestBodyMode(), RequestBody, &req)
	hdr(pm.GetResponseHeaderMode(), ResponseHeaders, &resp)
	body(pm.GetResponseBodyMode(), ResponseBody, &resp)
	for _, t := range []extprocfilterv3.ProcessingMode_HeaderSendMode{pm.GetRequestTrailerMode(), pm.GetResponseTrailerMode()} {
		if t != extprocfilterv3.ProcessingMode_SKIP && t != extprocfilterv3.ProcessingMode_DEFAULT {
			err = errors.Join(err, fmt.Errorf("trailer mode %s not supported", t))
		}
	}
	return req, resp, err
}

// AIGWBackend is the part of an AIGW filter config (internal/filterapi
// Config) the bench needs to predict AIGW's replies.
type AIGWBackend struct {
	Name              string `json:"name"`
	ModelNameOverride string `json:"modelNameOverride"`
	Schema            struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Prefix  string `json:"prefix"`
	} `json:"schema"`
	Auth struct {
		APIKey *struct {
			Key string `json:"key"`
		} `json:"apiKey"`
		GCP *struct {
			AccessToken string `json:"accessToken"`
			Region      string `json:"region"`
			ProjectName string `json:"projectName"`
		} `json:"gcp"`
	} `json:"auth"`
}

// AIGWProfile is what AIGW must do with the bench's request under one of
// its filter configs: the same logical work as the Weir Profile it is
// paired with.
type AIGWProfile struct {
	ConfigPath string      `json:"config"`
	Version    string      `json:"version"`
	Backend    AIGWBackend `json:"-"`
	// UpstreamPath and Authorization are what the upstream reply must set.
	UpstreamPath  string `json:"upstream_path"`
	Authorization string `json:"-"`
	// UpstreamHost is the upstream_host attribute (the endpoint's host).
	UpstreamHost string `json:"upstream_host"`
	// RewriteRequest: the upstream reply must replace the body.
	RewriteRequest bool `json:"rewrite_request"`
	// Note says how the work differs from Weir's, if it does.
	Note string `json:"note,omitempty"`
}

// AIGWConfigPath is where the AIGW filter config paired with a Weir
// bench config lives: aigw/<name>.yaml next to it.
func AIGWConfigPath(weirConfig string) string {
	dir, file := path.Split(weirConfig)
	return path.Join(dir, "aigw", file)
}

// LoadAIGWProfile reads an AIGW filter config and pairs it with p.
func LoadAIGWProfile(cfgPath string, p *Profile) (*AIGWProfile, error) {
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, err
	}
	return ParseAIGWProfile(cfgPath, raw, p)
}

// ParseAIGWProfile is [LoadAIGWProfile] on config content. The config must
// have exactly one backend, doing what p's backend does: an OpenAI schema
// for an openai provider (passthrough) and GCPAnthropic for anthropic (AIGW
// has no OpenAI-to-plain-Anthropic chat translator: endpointspec.go
// ChatCompletionsEndpointSpec.GetTranslator offers GCPAnthropic and
// AWSAnthropic; GCPAnthropic sends an Anthropic Messages body with a bearer
// token, the closest to api.anthropic.com), with the same upstream model.
func ParseAIGWProfile(cfgPath string, raw []byte, p *Profile) (*AIGWProfile, error) {
	var cfg struct {
		Version  string        `json:"version"`
		Backends []AIGWBackend `json:"backends"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	if len(cfg.Backends) != 1 {
		return nil, fmt.Errorf("%s: want exactly one backend, got %d", cfgPath, len(cfg.Backends))
	}
	b := cfg.Backends[0]
	ap := &AIGWProfile{ConfigPath: cfgPath, Version: cfg.Version, Backend: b}
	if b.Name == "" {
		return nil, fmt.Errorf("%s: backend without a name", cfgPath)
	}
	model := p.ClientModel
	if b.ModelNameOverride != "" {
		model = b.ModelNameOverride
	}
	if model != p.UpstreamModel {
		return nil, fmt.Errorf("%s: upstream model %q, but %s sends %q", cfgPath, model, p.Name, p.UpstreamModel)
	}
	switch {
	case b.Schema.Name == "OpenAI" && p.Provider == "openai":
		if b.Auth.APIKey == nil || b.Auth.APIKey.Key == "" {
			return nil, fmt.Errorf("%s: an OpenAI backend needs auth.apiKey.key", cfgPath)
		}
		// translator/openai_openai.go: path.Join("/", prefix, "chat/completions");
		// backendauth/api_key.go: Authorization: Bearer <key>.
		ap.UpstreamPath = path.Join("/", b.Schema.Prefix, "chat/completions")
		ap.Authorization = "Bearer " + strings.TrimSpace(b.Auth.APIKey.Key)
		ap.UpstreamHost = p.Authority
		// A model override rewrites the body's model (sjson), as Weir does.
		ap.RewriteRequest = b.ModelNameOverride != ""
		if ap.UpstreamPath != p.UpstreamPath {
			return nil, fmt.Errorf("%s: upstream path %q, but %s sends %q", cfgPath, ap.UpstreamPath, p.Name, p.UpstreamPath)
		}
	case b.Schema.Name == "GCPAnthropic" && p.Provider == "anthropic":
		g := b.Auth.GCP
		if g == nil || g.AccessToken == "" || g.Region == "" || g.ProjectName == "" {
			// Without a static token AIGW looks up Google default
			// credentials, which the bench must never make it do.
			return nil, fmt.Errorf("%s: a GCPAnthropic backend needs auth.gcp accessToken, region and projectName", cfgPath)
		}
		// backendauth/gcp.go gcpHandler.Do and translator/openai_gcpanthropic.go.
		ap.UpstreamPath = fmt.Sprintf("/v1/projects/%s/locations/%s/publishers/anthropic/models/%s:rawPredict", g.ProjectName, g.Region, model)
		ap.Authorization = "Bearer " + g.AccessToken
		ap.UpstreamHost = g.Region + "-aiplatform.googleapis.com"
		ap.RewriteRequest = true
		ap.Note = "Anthropic on Vertex AI (GCPAnthropic): Anthropic Messages body with anthropic_version instead of model, model in the path"
	default:
		return nil, fmt.Errorf("%s: schema %q cannot stand in for %s's %s backend", cfgPath, b.Schema.Name, p.Name, p.Provider)
	}
	return ap, nil
}

// AIGWDriver plays AIGW's message shape for one request. With Strict it
// validates AIGW's replies; without, only the reply types (the null floor
// on AIGW's shape), and it sends what AIGW would have made Envoy send.
type AIGWDriver struct {
	Profile *Profile
	AIGW    *AIGWProfile
	Strict  bool

	routerMode, upstreamMode             *extprocfilterv3.ProcessingMode
	routerReq, routerResp, upstreamPhase []Phase
	respHeaders                          *corev3.HeaderMap
}

// NewAIGWDriver derives the phases from AIGW's two filter configs.
func NewAIGWDriver(p *Profile, ap *AIGWProfile, strict bool) (*AIGWDriver, error) {
	d := &AIGWDriver{Profile: p, AIGW: ap, Strict: strict}
	var err error
	rf, uf := AIGWRouterFilter(), AIGWUpstreamFilter()
	if d.routerReq, d.routerResp, err = AIGWPhases(rf.GetProcessingMode()); err != nil {
		return nil, fmt.Errorf("aigw router filter: %w", err)
	}
	var upResp []Phase
	if d.upstreamPhase, upResp, err = AIGWPhases(uf.GetProcessingMode()); err != nil {
		return nil, fmt.Errorf("aigw upstream filter: %w", err)
	}
	if len(upResp) != 0 || len(d.routerReq) == 0 || d.routerReq[0] != RequestHeaders || len(d.upstreamPhase) != 1 || d.upstreamPhase[0] != RequestHeaders {
		return nil, fmt.Errorf("aigw shape changed: router %v/%v, upstream %v/%v", d.routerReq, d.routerResp, d.upstreamPhase, upResp)
	}
	d.routerMode, d.upstreamMode = rf.GetProcessingMode(), uf.GetProcessingMode()
	// The same provider response headers the Weir driver sends.
	wd, err := NewDriver(&Shape{Backend: p.Backend}, p, false)
	if err != nil {
		return nil, err
	}
	d.respHeaders = wd.respHeaders
	return d, nil
}

// requestHeaders are the client's headers as Envoy's router filter sees
// them (the Weir driver's request_headers), plus extra pairs.
func (d *AIGWDriver) requestHeaders(id string, extra ...string) *corev3.HeaderMap {
	return headerMap(append([]string{
		":method", "POST", ":path", ChatPath, ":authority", "weir.bench", ":scheme", "https",
		"content-type", "application/json", "authorization", "Bearer " + d.Profile.ClientKey,
		"content-length", strconv.Itoa(len(d.Profile.RequestBody)), "x-request-id", id,
	}, extra...)...)
}

// upstreamAttributes are the upstream filter's request_attributes as Envoy
// evaluates them for a backend of an AIGatewayRoute: the controller stamps
// the backend name and upstream host on the endpoint (host) metadata and
// the route name on the route (setEndpointMetadataBackendName,
// stampUpstreamHostMetadata); the cluster-metadata backend name is only
// set for an InferencePool, so it does not evaluate and Envoy omits it.
func (d *AIGWDriver) upstreamAttributes() map[string]*structpb.Struct {
	return map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
		aigwAttrHostBackend:  structpb.NewStringValue(d.AIGW.Backend.Name),
		aigwAttrUpstreamHost: structpb.NewStringValue(d.AIGW.UpstreamHost),
		aigwAttrRouteName:    structpb.NewStringValue(AIGWRouteName),
	}}}
}

func protocolConfig(pm *extprocfilterv3.ProcessingMode) *extprocv3.ProtocolConfiguration {
	return &extprocv3.ProtocolConfiguration{RequestBodyMode: pm.GetRequestBodyMode(), ResponseBodyMode: pm.GetResponseBodyMode()}
}

// routerMessage builds the router filter's message for ph.
func (d *AIGWDriver) routerMessage(ph Phase, first bool, id string) *extprocv3.ProcessingRequest {
	req := &extprocv3.ProcessingRequest{}
	if first {
		req.ProtocolConfig = protocolConfig(d.routerMode)
	}
	switch ph {
	case RequestHeaders:
		req.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: d.requestHeaders(id)}}
	case RequestBody:
		req.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: d.Profile.RequestBody, EndOfStream: true}}
	case ResponseHeaders:
		req.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: d.respHeaders}}
	case ResponseBody:
		req.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: d.Profile.ResponseBody, EndOfStream: true}}
	}
	return req
}

// upstreamMessage is the upstream filter's request_headers: the client's
// headers with the router-level replies' header mutations applied, as
// Envoy forwards them, and the xDS attributes.
func (d *AIGWDriver) upstreamMessage(id string, set []string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		ProtocolConfig: protocolConfig(d.upstreamMode),
		Request:        &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: d.requestHeaders(id, set...)}},
		Attributes:     d.upstreamAttributes(),
	}
}

// expectedSet is what AIGW's router-level replies set, in order, for the
// null floor to forward: the internal request id (x-request-id, '-', a
// UUID), then the model and the original path (processor_impl.go
// routerProcessor.ProcessRequestBody).
func (d *AIGWDriver) expectedSet(id string) []string {
	return []string{
		aigwInternalReqID, id + "-" + strings.Repeat("0", aigwUUIDLen),
		aigwModel, d.Profile.ClientModel,
		aigwOriginalPath, ChatPath,
		envoyOriginalPath, ChatPath,
	}
}

// Sizes returns each message's protobuf size, in the order sent.
func (d *AIGWDriver) Sizes() []MessageSize {
	id := RequestID(0)
	var out []MessageSize
	for i, ph := range d.routerReq {
		out = append(out, MessageSize{Filter: "router", Phase: ph, Bytes: proto.Size(d.routerMessage(ph, i == 0, id))})
	}
	out = append(out, MessageSize{Filter: "upstream", Phase: RequestHeaders, Bytes: proto.Size(d.upstreamMessage(id, d.expectedSet(id)))})
	for _, ph := range d.routerResp {
		out = append(out, MessageSize{Filter: "router", Phase: ph, Bytes: proto.Size(d.routerMessage(ph, false, id))})
	}
	return out
}

// Do plays one request: router stream (request headers, request body),
// upstream stream (request headers, then half-closed and waited for),
// router stream (response headers, response body), router stream closed.
func (d *AIGWDriver) Do(ctx context.Context, c extprocv3.ExternalProcessorClient, id string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs, err := c.Process(ctx)
	if err != nil {
		return fail("router: open stream", "%v", err)
	}
	var set []string
	for i, ph := range d.routerReq {
		resp, err := roundTrip(rs, d.routerMessage(ph, i == 0, id), "router", ph)
		if err != nil {
			return err
		}
		if err := checkType(ph, resp, "router"); err != nil {
			return err
		}
		for _, h := range replyCommon(resp).GetHeaderMutation().GetSetHeaders() {
			v := h.GetHeader().GetRawValue()
			if v == nil {
				v = []byte(h.GetHeader().GetValue())
			}
			set = append(set, h.GetHeader().GetKey(), string(v))
		}
		if d.Strict {
			if err := d.checkRouterRequest(ph, resp, id); err != nil {
				return err
			}
		}
	}
	if !d.Strict {
		set = d.expectedSet(id)
	}

	us, err := c.Process(ctx)
	if err != nil {
		return fail("upstream: open stream", "%v", err)
	}
	resp, err := roundTrip(us, d.upstreamMessage(id, set), "upstream", RequestHeaders)
	if err != nil {
		return err
	}
	if err := checkType(RequestHeaders, resp, "upstream"); err != nil {
		return err
	}
	if d.Strict {
		if err := d.checkUpstream(resp); err != nil {
			return err
		}
	}
	if err := closeStream(us, "upstream"); err != nil {
		return err
	}

	for _, ph := range d.routerResp {
		resp, err := roundTrip(rs, d.routerMessage(ph, false, id), "router", ph)
		if err != nil {
			return err
		}
		if err := checkType(ph, resp, "router"); err != nil {
			return err
		}
		if d.Strict && ph == ResponseBody {
			if err := d.checkResponseBody(resp); err != nil {
				return err
			}
		}
	}
	return closeStream(rs, "router")
}

func (d *AIGWDriver) checkRouterRequest(ph Phase, r *extprocv3.ProcessingResponse, id string) error {
	h := setHeaders(replyCommon(r))
	switch ph {
	case RequestHeaders:
		v := h[aigwInternalReqID]
		if !strings.HasPrefix(v, id+"-") || len(v) != len(id)+1+aigwUUIDLen {
			return fail("router request_headers: no "+aigwInternalReqID, "got %q", v)
		}
	case RequestBody:
		if h[aigwModel] != d.Profile.ClientModel || h[aigwOriginalPath] != ChatPath {
			return fail("router request_body: wrong routing headers", "%s %q, %s %q", aigwModel, h[aigwModel], aigwOriginalPath, h[aigwOriginalPath])
		}
		if !replyCommon(r).GetClearRouteCache() {
			return fail("router request_body: route cache not cleared", "")
		}
	}
	return nil
}

// checkUpstream checks the upstream filter's only reply: the backend's
// path and credential, and the body: untouched with CONTINUE for
// passthrough, an Anthropic Messages request with CONTINUE_AND_REPLACE for
// GCPAnthropic.
func (d *AIGWDriver) checkUpstream(r *extprocv3.ProcessingResponse) error {
	c := replyCommon(r)
	h := map[string]string{}
	for k, v := range setHeaders(c) {
		h[strings.ToLower(k)] = v
	}
	ap := d.AIGW
	// A body replacement is CONTINUE_AND_REPLACE; without one AIGW says
	// CONTINUE so Envoy keeps the body (ProcessRequestHeaders,
	// wantBodyReplace).
	wantStatus := extprocv3.CommonResponse_CONTINUE
	if ap.RewriteRequest {
		wantStatus = extprocv3.CommonResponse_CONTINUE_AND_REPLACE
	}
	if c.GetStatus() != wantStatus {
		return fail("upstream request_headers: wrong status", "got %s, want %s", c.GetStatus(), wantStatus)
	}
	if h[":path"] != ap.UpstreamPath {
		return fail("upstream request_headers: wrong :path", "got %q, want %q", h[":path"], ap.UpstreamPath)
	}
	if h["authorization"] != ap.Authorization {
		return fail("upstream request_headers: backend credential not set", "set headers %v", keys(h))
	}
	bm := c.GetBodyMutation().GetBody()
	switch {
	case ap.RewriteRequest && bm == nil:
		return fail("upstream request_headers: body not translated", "no body mutation")
	case !ap.RewriteRequest && bm != nil:
		return fail("upstream request_headers: passthrough body was rewritten", "%d bytes", len(bm))
	case bm == nil:
		return nil
	}
	if !gjson.ValidBytes(bm) {
		return fail("upstream request_headers: translated body is not JSON", "%.200s", bm)
	}
	if d.Profile.Provider == "anthropic" &&
		(gjson.GetBytes(bm, "system").Raw == "" || gjson.GetBytes(bm, "messages.#").Int() != 3 ||
			gjson.GetBytes(bm, "max_tokens").Int() != 512 || gjson.GetBytes(bm, "anthropic_version").Str == "") {
		return fail("upstream request_headers: not an Anthropic Messages request", "%.300s", bm)
	}
	if cl := h["content-length"]; cl != "" && cl != strconv.Itoa(len(bm)) {
		return fail("upstream request_headers: wrong content-length", "got %q, want %d", cl, len(bm))
	}
	return nil
}

// checkResponseBody is the same check as for Weir; AIGW may leave
// content-length unset.
func (d *AIGWDriver) checkResponseBody(r *extprocv3.ProcessingResponse) error {
	return checkResponseBody(d.Profile, r, false)
}
