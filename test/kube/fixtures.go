package kube

import (
	_ "embed"
)

// DevObjects is testdata/dev.yaml: config/default.yaml as Kubernetes
// objects, the AIRoute "dev" and the VirtualKey "dev" in namespace
// weir-dev, whose Services are [DevUpstreams].
//
//go:embed testdata/dev.yaml
var DevObjects []byte
