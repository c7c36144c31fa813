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
	"net/url"
	"os"
	"strings"

	"github.com/weir-ai/weir/config"
	"github.com/weir-ai/weir/test/devstack"
	"github.com/weir-ai/weir/test/fakeprovider"
)

const devNotEnvoy = `
  Weir dev gateway
  ================
  !! THIS IS NOT ENVOY. !!
  This is a DEVELOPMENT data plane: a Go stand-in for Envoy (test/harness)
  with built-in fake providers, in one process. Never put it in front of
  real traffic: run 'weir extproc' behind a real Envoy in production
  ('weirctl envoy-config' prints its bootstrap).
`

const devDefaultModels = `
  Config: the embedded default. Providers are built-in fakes; no provider
  key and no network are needed. Run with --config FILE for your own.

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
	cfgPath := fs.String("config", "", "config YAML `file` instead of the embedded default; reloaded when it changes. "+
		"${WEIR_FAKE_<PROVIDER>_URL} expands to a built-in fake's base URL")
	listen := fs.String("listen", "127.0.0.1:8080", "data plane listen `address`")
	adminAddr := fs.String("admin", "127.0.0.1:9003", "extproc admin/metrics `address`; empty disables")
	level := fs.String("log-level", "info", "log `level`")
	keyAdmin := fs.String("key-admin", "127.0.0.1:8081", "key admin API `address`, served when "+envMasterKey+" is set")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errUsage("unexpected argument " + fs.Arg(0))
	}
	op, access, err := newLoggers(*level, stdout, stderr)
	if err != nil {
		return err
	}
	master := os.Getenv(envMasterKey)
	if err := checkMaster(master); err != nil {
		return err
	}
	st, err := devstack.Start(ctx, devstack.Options{
		Listen:         *listen,
		AdminListen:    *adminAddr,
		ConfigPath:     *cfgPath,
		MasterKey:      master,
		KeyAdminListen: *keyAdmin,
		Logger:         op,
		AccessLog:      access,
		// The fakes keep recent requests only: a long session (or a
		// probe with large bodies) must not grow without bound.
		Record: fakeprovider.DevRecordLimit,
	})
	if err != nil {
		return err
	}
	fmt.Fprint(stderr, devBanner(st))
	keys := st.Config().Auth.KeysRequired()
	switch {
	case master != "" && keys:
		fmt.Fprintf(stderr, "  Virtual keys are REQUIRED (%s is set). Key admin API: http://%s\n"+
			"    curl http://%s/key/generate -H \"Authorization: Bearer $%s\" -d '{\"models\":[\"gpt-4o-mini\"]}'\n\n",
			envMasterKey, st.KeyAdminAddr, st.KeyAdminAddr, envMasterKey)
	case master != "":
		fmt.Fprintf(stderr, "  Key admin API: http://%s. The gateway is OPEN: the config's auth section\n"+
			"  does not require keys (set auth.mode: keys).\n\n", st.KeyAdminAddr)
	case keys:
		fmt.Fprintf(stderr, "  Virtual keys are REQUIRED by the config's auth section.\n\n")
	case st.ConfigPath != "":
		fmt.Fprintf(stderr, "  The gateway is OPEN: the config's auth section requires no virtual key.\n\n")
	default:
		fmt.Fprintf(stderr, "  The gateway is OPEN: no virtual key is needed. Set %s to require keys\n  and serve the key admin API on 127.0.0.1:8081.\n\n", envMasterKey)
	}
	// A machine-readable line, whatever the log level, so scripts and tests
	// wait on an event rather than a timer.
	ready, _ := json.Marshal(map[string]string{
		"msg": "weir dev ready", "url": st.URL, "admin": st.AdminAddr, "extproc": st.ExtProcAddr,
		"data_plane": "development harness, not Envoy", "key_admin": st.KeyAdminAddr,
		"config": configName(st.ConfigPath),
	})
	fmt.Fprintf(stderr, "%s\n", ready)
	<-ctx.Done()
	return st.Close()
}

func configName(path string) string {
	if path == "" {
		return "embedded default"
	}
	return path
}

// devBanner says what is running. With a config file it names the file and
// every backend's provider and base URL (never a credential: a base URL's
// userinfo is redacted).
func devBanner(st *devstack.Stack) string {
	var b strings.Builder
	b.WriteString(devNotEnvoy)
	if st.ConfigPath == "" {
		fmt.Fprintf(&b, devDefaultModels, st.URL, st.URL)
		return b.String()
	}
	cfg := st.Config()
	fmt.Fprintf(&b, "\n  Config: %s (reloaded when it changes)\n", st.ConfigPath)
	fmt.Fprintf(&b, "  OpenAI base URL:  %s/v1\n\n  Backends:\n", st.URL)
	fakes := map[string]string{}
	for env, u := range st.FakeURLs {
		fakes[u] = env
	}
	for _, be := range cfg.Backends {
		fmt.Fprintf(&b, "    %-20s %-10s %s%s\n", be.Name, be.Provider, redactURL(be.BaseURL), fakeNote(be.BaseURL, fakes))
	}
	b.WriteString("\n  Models (GET /v1/models lists them):\n")
	const maxModels = 40
	for i, m := range cfg.Models {
		if i == maxModels {
			fmt.Fprintf(&b, "    ... and %d more\n", len(cfg.Models)-maxModels)
			break
		}
		fmt.Fprintf(&b, "    %-30s -> %s\n", modelNames(m), strings.Join(m.Backends, ", "))
	}
	b.WriteString("\n  Built-in fakes, for ${VAR} in the config:\n")
	for _, f := range devstack.Fakes {
		fmt.Fprintf(&b, "    %-24s %s\n", f.Env, st.FakeURLs[f.Env])
	}
	b.WriteString("\n")
	return b.String()
}

func modelNames(m config.Model) string {
	return strings.Join(append([]string{m.Name}, m.Aliases...), ", ")
}

// fakeNote marks a base URL that points at a built-in fake.
func fakeNote(base string, fakes map[string]string) string {
	for u, env := range fakes {
		if base == u || strings.HasPrefix(base, u+"/") {
			return "  (built-in fake, " + env + ")"
		}
	}
	return ""
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable base URL)"
	}
	return u.Redacted()
}
