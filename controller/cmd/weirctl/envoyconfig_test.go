package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestEnvoyConfig renders the embedded default config and checks the
// shape DESIGN.md promises; bad flags are errors, not output.
func TestEnvoyConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    []string
	}{
		{name: "default", args: nil, want: []string{
			"envoy.http.early_header_mutation.header_mutation", "request_header_mode: SEND", "envoy.filters.http.match_delegate",
			"path: /tmp/weir/extproc.sock",
		}},
		{name: "plaintext tcp extproc off loopback", args: []string{"--extproc", "10.1.2.3:9002"}, wantErr: "neither a unix socket nor loopback"},
		{name: "bad listen", args: []string{"--listen", "nope"}, wantErr: "listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runEnvoyConfig(tt.args, &out, &errOut)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if out.Len() != 0 {
					t.Error("printed a config despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}
