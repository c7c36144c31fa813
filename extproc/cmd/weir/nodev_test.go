//go:build !dev

package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestDevNotInProductionBuild(t *testing.T) {
	err := runDev(context.Background(), nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-tags dev") || !strings.Contains(err.Error(), "make run") {
		t.Fatalf("runDev in a production build = %v, want a pointer to make run and -tags dev", err)
	}
}
