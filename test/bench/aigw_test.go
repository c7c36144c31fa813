package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
)

func TestAIGWPhases(t *testing.T) {
	req, resp, err := AIGWPhases(AIGWRouterFilter().GetProcessingMode())
	if err != nil || !slices.Equal(req, []Phase{RequestHeaders, RequestBody}) || !slices.Equal(resp, []Phase{ResponseHeaders, ResponseBody}) {
		t.Errorf("router: %v %v %v", req, resp, err)
	}
	req, resp, err = AIGWPhases(AIGWUpstreamFilter().GetProcessingMode())
	if err != nil || !slices.Equal(req, []Phase{RequestHeaders}) || len(resp) != 0 {
		t.Errorf("upstream: %v %v %v", req, resp, err)
	}
	streamed := &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}
	if _, _, err := AIGWPhases(streamed); err == nil {
		t.Error("STREAMED accepted")
	}
	trailers := &extprocfilterv3.ProcessingMode{RequestTrailerMode: extprocfilterv3.ProcessingMode_SEND}
	if _, _, err := AIGWPhases(trailers); err == nil {
		t.Error("trailers accepted")
	}
}

func loadPair(t *testing.T, name string) (*Profile, *AIGWProfile) {
	t.Helper()
	p, err := LoadProfile(name+".yaml", "gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	if got := AIGWConfigPath(name + ".yaml"); got != "aigw/"+name+".yaml" {
		t.Fatalf("AIGWConfigPath = %q", got)
	}
	ap, err := LoadAIGWProfile(AIGWConfigPath(name+".yaml"), p)
	if err != nil {
		t.Fatal(err)
	}
	return p, ap
}

func TestAIGWCommittedConfigs(t *testing.T) {
	_, ap := loadPair(t, "openai")
	if ap.Version != "dev" || ap.UpstreamPath != "/v1/chat/completions" || ap.Authorization != "Bearer sk-bench" ||
		ap.UpstreamHost != "api.openai.com" || ap.RewriteRequest {
		t.Errorf("openai: %+v", ap)
	}
	_, ap = loadPair(t, "anthropic")
	if ap.UpstreamPath != "/v1/projects/weirbench/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:rawPredict" ||
		ap.Authorization != "Bearer sk-bench" || ap.UpstreamHost != "us-east5-aiplatform.googleapis.com" || !ap.RewriteRequest || ap.Note == "" {
		t.Errorf("anthropic: %+v", ap)
	}
}

func TestParseAIGWProfileRejects(t *testing.T) {
	openai, err := LoadProfile("openai.yaml", "gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	anthropic, err := LoadProfile("anthropic.yaml", "gpt-4o-mini")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, yaml string
		p          *Profile
		want       string
	}{
		{"two backends", "backends: [{name: a, schema: {name: OpenAI}}, {name: b, schema: {name: OpenAI}}]", openai, "exactly one backend"},
		{"no name", "backends: [{schema: {name: OpenAI, prefix: v1}, auth: {apiKey: {key: k}}}]", openai, "without a name"},
		{"no key", "backends: [{name: a, schema: {name: OpenAI, prefix: v1}}]", openai, "auth.apiKey.key"},
		{"other path", "backends: [{name: a, schema: {name: OpenAI}, auth: {apiKey: {key: k}}}]", openai, "upstream path"},
		{"other model", "backends: [{name: a, modelNameOverride: gpt-4o, schema: {name: OpenAI, prefix: v1}, auth: {apiKey: {key: k}}}]", openai, "upstream model"},
		{"wrong schema", "backends: [{name: a, modelNameOverride: claude-sonnet-4-5, schema: {name: OpenAI, prefix: v1}, auth: {apiKey: {key: k}}}]", anthropic, "cannot stand in"},
		{"no model override", "backends: [{name: a, schema: {name: GCPAnthropic}, auth: {gcp: {accessToken: t, region: r, projectName: p}}}]", anthropic, "upstream model"},
		{"gcp default credentials", "backends: [{name: a, modelNameOverride: claude-sonnet-4-5, schema: {name: GCPAnthropic}, auth: {gcp: {region: r, projectName: p}}}]", anthropic, "accessToken"},
	} {
		_, err := ParseAIGWProfile(tc.name, []byte(tc.yaml), tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

// The null floor on AIGW's shape: five messages on two streams, only the
// reply types checked; the strict driver rejects the null server's empty
// replies.
func TestAIGWDriverAgainstNullServer(t *testing.T) {
	c := serve(t, NullServer{})
	for _, name := range []string{"openai", "anthropic"} {
		p, ap := loadPair(t, name)
		d, err := NewAIGWDriver(p, ap, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Do(context.Background(), c, RequestID(1)); err != nil {
			t.Errorf("%s null floor: %v", name, err)
		}
		sz := d.Sizes()
		var got []string
		for _, m := range sz {
			got = append(got, m.Filter+" "+string(m.Phase))
		}
		want := []string{"router request_headers", "router request_body", "upstream request_headers", "router response_headers", "router response_body"}
		if !slices.Equal(got, want) {
			t.Errorf("%s sizes: %v", name, got)
		}
		strict, err := NewAIGWDriver(p, ap, true)
		if err != nil {
			t.Fatal(err)
		}
		var be *Error
		if err := strict.Do(context.Background(), c, RequestID(2)); !errors.As(err, &be) || !strings.Contains(be.Key, aigwInternalReqID) {
			t.Errorf("%s strict against the null server: %v", name, err)
		}
	}
}
