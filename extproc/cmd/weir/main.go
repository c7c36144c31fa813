// Command weir is Weir's single binary.
//
//	weir extproc --config FILE --listen ADDR   the ext_proc gRPC server
//	weir dev [--config FILE]                   a local gateway with fake providers
//	                                           (only in builds with -tags dev)
//	weir key generate|hash                     virtual keys and their hashes
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `weir: an AI gateway inside Envoy (Envoy's config: bin/weirctl envoy-config)

Usage:
  weir extproc --config FILE [--listen ADDR] [--admin ADDR] [--log-level LEVEL]
  weir dev [--config FILE] [--listen ADDR] [--admin ADDR]   (bin/weir-dev: builds with -tags dev)
  weir key generate | weir key hash < keys

Run 'weir <command> --help' for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "extproc":
		err = runExtproc(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "envoy-config":
		// Kept out of this binary: Envoy's config API would stay resident
		// in every extproc replica.
		err = errors.New("moved to bin/weirctl: weirctl envoy-config --config FILE")
	case "dev":
		err = runDev(ctx, os.Args[2:], os.Stdout, os.Stderr)
	case "key":
		err = runKey(os.Args[2:], os.Stdin, os.Stdout)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "weir: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "weir %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// newLoggers returns the operational logger (stderr) and the access log
// (stdout), both JSON.
func newLoggers(level string, stdout, stderr io.Writer) (*slog.Logger, io.Writer, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, fmt.Errorf("--log-level: %w", err)
	}
	op := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: l}))
	return op, stdout, nil
}
