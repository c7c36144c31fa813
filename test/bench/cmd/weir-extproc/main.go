// Command weir-extproc is a stand-in for `weir extproc` while cmd/weir is
// not buildable on this branch. It takes the same subcommand and flags and
// calls daemon.Run with the same options (operational log as JSON on
// stderr, access log as JSON on stdout), so weirbench can start it or the
// real binary interchangeably:
//
//	weir-extproc extproc --config FILE --listen ADDR --admin ADDR --log-level LEVEL
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/weir-ai/weir/extproc/daemon"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "extproc" {
		fmt.Fprintln(os.Stderr, "usage: weir-extproc extproc --config FILE [--listen ADDR] [--admin ADDR] [--log-level LEVEL]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("weir extproc", flag.ExitOnError)
	cfg := fs.String("config", "", "extproc config YAML `file` (required)")
	listen := fs.String("listen", "127.0.0.1:9002", "gRPC listen `address`: host:port or unix:///path")
	adminAddr := fs.String("admin", "127.0.0.1:9003", "admin/metrics listen `address`; empty disables")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	_ = fs.Parse(os.Args[2:])
	if *cfg == "" {
		fmt.Fprintln(os.Stderr, "weir extproc: --config is required")
		os.Exit(2)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "weir extproc: --log-level: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := daemon.Run(ctx, daemon.Options{
		ConfigPath:  *cfg,
		Listen:      *listen,
		AdminListen: *adminAddr,
		Profiling:   os.Getenv("WEIR_PPROF") != "",
		Logger:      slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})),
		AccessLog:   os.Stdout,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "weir extproc: %v\n", err)
		os.Exit(1)
	}
}
