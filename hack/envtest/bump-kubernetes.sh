#!/usr/bin/env bash
# Points hack/envtest/kube-apiserver at another Kubernetes release:
#   hack/envtest/bump-kubernetes.sh v1.37.2
# k8s.io/kubernetes' go.mod replaces each staging module (k8s.io/api,
# apimachinery, apiserver, client-go, kms, ...) with a directory in its own
# tree, which a module that requires it cannot see. Each of those is also
# published as k8s.io/<name> v0.<minor>.<patch>, so this rewrites the
# wrapper's go.mod to require the release and to replace every module that
# release's go.mod lists under staging/ with that v0 version. The list is
# read from the release, never typed by hand, so a staging module added
# upstream is picked up. make envtest-assets rebuilds on the next run.
set -euo pipefail
ver=${1:?usage: $0 v1.MINOR.PATCH}
case $ver in v1.*.*) ;; *) echo "want a v1.x.y Kubernetes release, got $ver" >&2; exit 2 ;; esac
staging=v0.${ver#v1.}
dir=$(cd "$(dirname "$0")/kube-apiserver" && pwd)

kmod=$(go mod download -json "k8s.io/kubernetes@$ver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
[ -f "$kmod" ] || { echo "could not download k8s.io/kubernetes@$ver" >&2; exit 1; }
gover=$(sed -n 's/^go //p' "$kmod")

{
  echo "module weir.dev/hack/envtest/kube-apiserver"
  echo
  echo "go $gover"
  echo
  echo "require k8s.io/kubernetes $ver"
  echo
  echo "// Every staging module of k8s.io/kubernetes $ver, from its go.mod (hack/envtest/bump-kubernetes.sh)."
  echo "replace ("
  sed -n '/^replace (/,/^)/p' "$kmod" | awk -v v="$staging" '$3 ~ /^\.\/staging\/src\// {print "\t" $1 " => " $1 " " v}'
  echo ")"
} >"$dir/go.mod"
rm -f "$dir/go.sum"
(cd "$dir" && go mod tidy)
echo "hack/envtest/kube-apiserver now builds Kubernetes $ver (staging $staging); commit go.mod and go.sum"
