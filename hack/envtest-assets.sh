#!/usr/bin/env bash
# Builds the control-plane binaries controller-runtime's envtest runs
# (kube-apiserver and etcd) from Go source into one directory, the layout
# KUBEBUILDER_ASSETS expects. Nothing is downloaded but Go modules: the
# versions are the ones hack/envtest/{kube-apiserver,etcd}/go.mod pin, so a
# version bump is a go.mod change and rebuilds here on its own.
#
# A binary is rebuilt only when its stamp (bin/envtest/.<name>.stamp)
# differs: the Go version, the build flags, every module version the build
# resolves (`go list -m all`, replacements included) and a hash of main.go.
# A cached build costs a few `go list` calls, so `make test` can depend on it.
#
# Usage: hack/envtest-assets.sh [out-dir]   (default bin/envtest)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/bin/envtest}
src=$root/hack/envtest
mkdir -p "$out"

# Static, stripped, reproducible: release Kubernetes builds kube-apiserver
# with cgo off too, and -trimpath keeps this machine's paths out of the binary.
export CGO_ENABLED=0
flags=(-trimpath)

stamp_of() { # name ldflags
  go env GOVERSION GOOS GOARCH CGO_ENABLED
  echo "flags: ${flags[*]} -ldflags '$2'"
  echo "main.go: $(sha256sum <"$src/$1/main.go" | cut -d' ' -f1)"
  go list -C "$src/$1" -m -f '{{.Path}} {{.Version}}{{with .Replace}} => {{.Path}} {{.Version}}{{end}}' all
}

build() { # name ldflags
  local name=$1 ldflags=$2 bin=$out/$1 stampfile=$out/.$1.stamp want
  want=$(stamp_of "$name" "$ldflags")
  if [ -x "$bin" ] && [ -f "$stampfile" ] && [ "$(cat "$stampfile")" = "$want" ]; then
    echo "envtest-assets: $name up to date ($bin)"
    return
  fi
  echo "envtest-assets: building $name (a cold build takes minutes)"
  local start=$SECONDS
  # Build beside the target and rename, so an interrupted build never leaves
  # a half-written binary that a stale stamp would vouch for.
  rm -f "$stampfile"
  go build -C "$src/$name" "${flags[@]}" -ldflags "$ldflags" -o "$bin.tmp" .
  mv -f "$bin.tmp" "$bin"
  printf '%s\n' "$want" >"$stampfile"
  echo "envtest-assets: built $name in $((SECONDS - start))s"
}

start=$SECONDS

# kube-apiserver reports the Kubernetes version it was built from (as a
# release build does through hack/lib/version.sh); without it, it says
# v0.0.0-master and clients such as kubectl warn about the skew.
kver=$(go list -C "$src/kube-apiserver" -m -f '{{.Version}}' k8s.io/kubernetes)
kmajor=${kver#v}; kmajor=${kmajor%%.*}
kminor=${kver#v*.}; kminor=${kminor%%.*}
vpkg=k8s.io/component-base/version
build kube-apiserver "-s -w -X $vpkg.gitVersion=$kver -X $vpkg.gitMajor=$kmajor -X $vpkg.gitMinor=$kminor -X $vpkg.gitTreeState=clean"
build etcd "-s -w"

echo "envtest-assets: $out ready in $((SECONDS - start))s"
