// Command kube-apiserver is Kubernetes' API server, built from the
// k8s.io/kubernetes module named in go.mod, for controller-runtime's envtest
// (make envtest-assets). It does what kubernetes' own
// cmd/kube-apiserver/apiserver.go does at that version, blank imports
// included: they register the JSON log format and the client-go and version
// metrics the real binary has, so flags envtest or a test passes behave as
// they do on a release build.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as in the release binary

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
