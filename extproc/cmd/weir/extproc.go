package main

import (
	"context"
	"flag"
	"io"
	"os"

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
	keyAdmin := fs.String("key-admin", "", "key management API listen `address` (needs WEIR_MASTER_KEY); empty disables")
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
	master := os.Getenv(envMasterKey)
	if *keyAdmin != "" && master == "" {
		return errUsage("--key-admin needs the master key in " + envMasterKey)
	}
	return daemon.Run(ctx, daemon.Options{
		KeyAdminListen: *keyAdmin,
		MasterKey:      master,
		ConfigPath:     *cfg,
		Listen:         *listen,
		AdminListen:    *adminAddr,
		Profiling:      *profiling,
		Logger:         op,
		AccessLog:      access,
	})
}

type errUsage string

func (e errUsage) Error() string { return string(e) }

// envMasterKey holds the key admin API's master key. It is read from the
// environment, never a flag, so it does not show up in process listings.
const envMasterKey = "WEIR_MASTER_KEY"
