// Package e2e drives a whole Weir stack (fake providers, extproc and the
// Envoy harness as data plane) through real clients: the official
// openai-go SDK and plain HTTP. No Envoy binary is involved; the harness
// reads the same generated Envoy config and speaks ext_proc as Envoy does.
package e2e

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/weir-ai/weir/test/devstack"
)

// startStack runs a stack with the embedded default config.
func startStack(t *testing.T) *devstack.Stack {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := devstack.Start(context.Background(), devstack.Options{
		Listen: "127.0.0.1:0", Logger: quiet, AccessLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}
