package main

import (
	"context"
	"flag"
	"io"

	"github.com/weir-ai/weir/extproc/daemon"
)

func runExtproc(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weir extproc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", "", "extproc config YAML `file` (required); reloaded when it changes")
	listen := fs.String("listen", "127.0.0.1:9002", "gRPC listen `address`: host:port or unix:///path")
	adminAddr := fs.String("admin", "127.0.0.1:9003", "admin/metrics listen `address` (/healthz, /readyz, /metrics); empty disables")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	profiling := fs.Bool("pprof", false, "serve net/http/pprof on the admin address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfg == "" {
		fs.Usage()
		return errUsage("--config is required")
	}
	op, access, err := newLoggers(*level, stdout, stderr)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, daemon.Options{
		ConfigPath:  *cfg,
		Listen:      *listen,
		AdminListen: *adminAddr,
		Profiling:   *profiling,
		Logger:      op,
		AccessLog:   access,
	})
}

type errUsage string

func (e errUsage) Error() string { return string(e) }
