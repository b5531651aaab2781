#!/usr/bin/env bash
# Builds the Kubernetes control plane and node binaries lepton's Kubernetes
# tests use (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet) and etcd, from Go modules only (tools/kubernetes/go.mod), into a
# cache folder keyed by version, and skips what is already there:
#   bash .ci/build-kubernetes.sh            # prints the folder on stdout
#   LEPTON_K8S_CACHE=/some/dir bash .ci/build-kubernetes.sh
# A cold build takes >10 minutes and ~2.5 GB of memory (kube-apiserver), so it
# runs under nice and one binary at a time. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/../tools/kubernetes"

K8S_VERSION=v1.36.3
CACHE="${LEPTON_K8S_CACHE:-/var/cache/lepton/kubernetes}"
OUT="$CACHE/$K8S_VERSION"
log() { echo "build-kubernetes: $*" >&2; }

mkdir -p "$OUT"
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"

build() { # name package
  local name="$1" pkg="$2"
  if [ -x "$OUT/$name" ]; then
    log "$name: cached in $OUT"
    return
  fi
  log "$name: building $pkg"
  local start=$SECONDS
  # Write to a temporary name first: an interrupted build never leaves a
  # truncated binary that a later run would take for a cached one.
  nice -n 19 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$OUT/.$name.tmp" "$pkg" >&2
  mv "$OUT/.$name.tmp" "$OUT/$name"
  log "$name: built in $((SECONDS - start)) s"
}

build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubelet k8s.io/kubernetes/cmd/kubelet

# envtest (controller-runtime) looks for kubectl next to etcd and
# kube-apiserver in KUBEBUILDER_ASSETS; Debian machines here have one.
if [ ! -e "$OUT/kubectl" ] && command -v kubectl >/dev/null; then
  ln -sf "$(command -v kubectl)" "$OUT/kubectl"
fi
echo "$OUT"
