package main

import (
	"strings"
	"testing"

	"github.com/weir-ai/weir/config"
)

func TestBackendCheck(t *testing.T) {
	var c backendCheck
	for _, tt := range []struct {
		name string
		b    config.Backend
		want string // empty: accepted
	}{
		{"openai", config.Backend{Name: "b", Provider: "openai", BaseURL: "https://api.openai.com/v1"}, ""},
		{"unknown provider", config.Backend{Name: "b", Provider: "nope", BaseURL: "https://x"}, "unknown provider"},
		{"unknown azure option", config.Backend{Name: "b", Provider: "azure", BaseURL: "https://x.openai.azure.com", Options: map[string]string{"bogus": "1"}}, "bogus"},
		{"azure option known", config.Backend{Name: "b", Provider: "azure", BaseURL: "https://x.openai.azure.com", Options: map[string]string{"api_version": "2024-10-21"}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 { // the second answer comes from the memo
				err := c.check(&tt.b)
				if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
					t.Fatalf("check = %v, want %q", err, tt.want)
				}
			}
		})
	}
}
