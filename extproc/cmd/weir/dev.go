//go:build dev

// The development data plane links test/devstack (the fake providers and
// the Go stand-in for Envoy), so it is only in builds with -tags dev
// (bin/weir-dev, `make build-dev`); nodev.go stands in otherwise.

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/weir-ai/weir/test/devstack"
)

const devBanner = `
  Weir dev gateway
  ----------------
  This is a DEVELOPMENT data plane: a Go stand-in for Envoy (test/harness),
  not Envoy. Use 'weir extproc' behind a real Envoy in production
  ('weir envoy-config' prints its bootstrap).

  Providers are built-in fakes; no provider key and no network are needed.

  OpenAI base URL:  %s/v1
  Models, one fake per provider (GET /v1/models lists them):
    gpt-4o-mini, text-embedding-3-small             OpenAI (passthrough)
    claude-sonnet-4-5                               Anthropic (translated)
    azure-gpt-4o-mini, azure-text-embedding-3-small Azure OpenAI
    gemini-2.5-flash, gemini-embedding-001          Google Gemini (translated)
    bedrock-claude-sonnet-4-5, bedrock-nova-lite,
    bedrock-titan-embed-text-v2                     AWS Bedrock (Converse, SigV4)
    vertex-gemini-2.5-flash, vertex-claude-sonnet-4-5  Vertex AI
    openai/*, anthropic/*, gemini/*                 wildcards

  curl %s/v1/chat/completions -H 'content-type: application/json' \
    -d '{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hello"}]}'

`

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("weir dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "data plane listen `address`")
	adminAddr := fs.String("admin", "127.0.0.1:9003", "extproc admin/metrics `address`; empty disables")
	level := fs.String("log-level", "info", "log `level`")
	keyAdmin := fs.String("key-admin", "127.0.0.1:8081", "key admin API `address`, served when "+envMasterKey+" is set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	op, access, err := newLoggers(*level, stdout, stderr)
	if err != nil {
		return err
	}
	master := os.Getenv(envMasterKey)
	st, err := devstack.Start(ctx, devstack.Options{
		Listen:         *listen,
		AdminListen:    *adminAddr,
		MasterKey:      master,
		KeyAdminListen: *keyAdmin,
		Logger:         op,
		AccessLog:      access,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, devBanner, st.URL, st.URL)
	if master != "" {
		fmt.Fprintf(stderr, "  Virtual keys are REQUIRED (%s is set). Key admin API: http://%s\n"+
			"    curl http://%s/key/generate -H \"Authorization: Bearer $%s\" -d '{\"models\":[\"gpt-4o-mini\"]}'\n\n",
			envMasterKey, st.KeyAdminAddr, st.KeyAdminAddr, envMasterKey)
	} else {
		fmt.Fprintf(stderr, "  The gateway is OPEN: no virtual key is needed. Set %s to require keys\n  and serve the key admin API on 127.0.0.1:8081.\n\n", envMasterKey)
	}
	// A machine-readable line, whatever the log level, so scripts and tests
	// wait on an event rather than a timer.
	ready, _ := json.Marshal(map[string]string{
		"msg": "weir dev ready", "url": st.URL, "admin": st.AdminAddr, "extproc": st.ExtProcAddr,
		"data_plane": "development harness, not Envoy", "key_admin": st.KeyAdminAddr,
	})
	fmt.Fprintf(stderr, "%s\n", ready)
	<-ctx.Done()
	return st.Close()
}
