// Command kubestack runs test/kube's stack for the SDK suites
// (test/sdk/node with WEIR_STACK=kube): a source-built kube-apiserver
// and etcd with Weir's CRDs, the controller, and two gateway pods, with
// config/default.yaml applied as Kubernetes objects. It waits until the
// route and its VirtualKey are Ready, prints one JSON line on stderr as
// `weir dev` does, {"msg":"weir dev ready","url":...,"api_key":...}, and
// serves until SIGTERM or SIGINT, then stops the API server.
//
// It is a test tool: it prints the issued key so the tests can use it.
// It needs kube-apiserver and etcd in $KUBEBUILDER_ASSETS (or bin/envtest
// under the module root of the working directory): `make envtest-assets`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weir-ai/weir/api/v1alpha1"
	"github.com/weir-ai/weir/test/kube"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "kubestack: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", "", "repository `root` (manifests/crds is read from it); empty: the module root above the working directory")
	level := flag.String("log-level", "warn", "log `level`")
	flag.Parse()
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	s, err := kube.Start(ctx, kube.Options{Root: *root, Logger: log})
	if err != nil {
		return err
	}
	// Whatever happens next, the API server must not outlive the command.
	defer func() {
		if err := s.Close(); err != nil {
			log.Warn("kubestack: stop", "error", err)
		}
	}()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := kube.Apply(wctx, s.Client, kube.DevObjects); err != nil {
		return err
	}
	route := &v1alpha1.AIRoute{ObjectMeta: metav1.ObjectMeta{Namespace: "weir-dev", Name: "dev"}}
	key := &v1alpha1.VirtualKey{ObjectMeta: metav1.ObjectMeta{Namespace: "weir-dev", Name: "dev"}}
	if err := s.WaitReady(wctx, route, key); err != nil {
		return err
	}
	apiKey, err := s.Key(wctx, "weir-dev", "dev", "")
	if err != nil {
		return err
	}
	pods := make([]string, len(s.Pods))
	for i, p := range s.Pods {
		pods[i] = p.URL
	}
	ready, _ := json.Marshal(map[string]any{
		"msg": "weir dev ready", "url": s.Pods[0].URL, "pods": pods, "api_key": apiKey,
		"xds": s.XDSAddr, "data_plane": "development harness as an xDS client of the controller, not Envoy",
		"config": "test/kube/testdata/dev.yaml applied to a source-built kube-apiserver",
	})
	fmt.Fprintf(os.Stderr, "%s\n", ready)
	<-ctx.Done()
	return nil
}
