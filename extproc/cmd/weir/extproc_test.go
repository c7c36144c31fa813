package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestWeakMasterKeyRefused: a weak WEIR_MASTER_KEY stops `weir extproc`
// before it binds anything, with an error that names the variable and
// never repeats the key.
func TestWeakMasterKeyRefused(t *testing.T) {
	for _, key := range []string{"sk-master-test", strings.Repeat("x", 40)} {
		t.Setenv(envMasterKey, key)
		err := runExtproc(context.Background(), []string{"--config", "/nonexistent.yaml", "--key-admin", "127.0.0.1:0"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), envMasterKey) || strings.Contains(err.Error(), key) {
			t.Errorf("master %q: %v", key, err)
		}
	}
}

// TestConfigSourceRequired: exactly one of --config and --xds-server.
func TestConfigSourceRequired(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--config", "/x.yaml", "--xds-server", "127.0.0.1:18000"},
	} {
		err := runExtproc(context.Background(), args, io.Discard, io.Discard)
		var u errUsage
		if !errors.As(err, &u) || !strings.Contains(err.Error(), "--xds-server") {
			t.Errorf("args %q: err = %v, want a usage error naming --xds-server", args, err)
		}
	}
}
