package config

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed presets.yaml
var presetsYAML []byte

// Preset is an OpenAI-compatible provider's defaults.
type Preset struct {
	BaseURL string `yaml:"base_url"`
	// Env is the environment variable holding the key; empty for local
	// servers that need none.
	Env string `yaml:"env"`
}

var presets = func() map[string]Preset {
	m := map[string]Preset{}
	if err := yaml.Unmarshal(presetsYAML, &m); err != nil {
		panic(fmt.Sprintf("config: embedded presets.yaml: %v", err))
	}
	return m
}()

// Presets returns the preset names, sorted.
func Presets() []string {
	out := make([]string, 0, len(presets))
	for k := range presets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// applyPresets fills backends that name a preset. Presets are config,
// not code: they only default fields a user could write by hand.
func (c *Config) applyPresets() error {
	for i := range c.Backends {
		b := &c.Backends[i]
		if b.BaseURL == "" && b.Provider == "vertex" {
			// Vertex AI's host follows from the location option.
			b.BaseURL = VertexBaseURL(b.Options["location"])
		}
		if b.Preset == "" {
			continue
		}
		p, ok := presets[b.Preset]
		if !ok {
			return fmt.Errorf("%w: backends[%d].preset: unknown preset %q (known: %s)", ErrInvalid, i, b.Preset, strings.Join(Presets(), ", "))
		}
		if b.Provider == "" {
			b.Provider = "openai"
		}
		if b.BaseURL == "" {
			b.BaseURL = p.BaseURL
		}
		if b.Credential == nil && p.Env != "" {
			b.Credential = &Credential{Env: p.Env}
		}
	}
	return nil
}

// VertexBaseURL is the Vertex AI endpoint of a location:
// https://{location}-aiplatform.googleapis.com, or
// https://aiplatform.googleapis.com for "global"
// (https://cloud.google.com/vertex-ai/docs/reference/rest#service-endpoint).
// It is "" for a location that is empty or not a lower-case DNS label.
func VertexBaseURL(location string) string {
	if location == "global" {
		return "https://aiplatform.googleapis.com"
	}
	if !isDNSLabel(location) {
		return ""
	}
	return "https://" + location + "-aiplatform.googleapis.com"
}
