//go:build !dev

package main

import (
	"context"
	"errors"
	"io"
)

// errNoDev is what `weir dev` says in a production build, which does not
// link the development data plane and the fake providers.
var errNoDev = errors.New("this build has no dev data plane; run `make run` or build with -tags dev (make build-dev builds bin/weir-dev)")

func runDev(context.Context, []string, io.Writer, io.Writer) error { return errNoDev }
