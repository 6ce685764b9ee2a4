#!/usr/bin/env bash
# Builds the servers the tests start (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, ec2-metadata-mock, Karpenter's KWOK provider and its CRDs) from their Go modules, into $BOOSTER_TEST_SERVERS
# (default ~/.cache/aws-spots-booster/bin). Idempotent: a binary whose module files have
# not changed is not rebuilt. Go's own caches (~/go/pkg/mod, ~/.cache/go-build) make a
# rebuild after a change incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BOOSTER_TEST_SERVERS:-$HOME/.cache/aws-spots-booster/bin}
mkdir -p "$out"
command -v go >/dev/null || { echo "go not found: install Go 1.24+ to build the test servers" >&2; exit 1; }

# build NAME MODULE_DIR PACKAGE [GOTOOLCHAIN]
build() {
  local name=$1 dir=$2 pkg=$3 toolchain=${4:-${GOTOOLCHAIN:-local}} stamp
  stamp=$(cat "$dir/go.mod" "$dir/go.sum" "$dir"/*.go | sha256sum | cut -c1-16)
  if [ -x "$out/$name" ] && [ "$(cat "$out/.$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== $name: cached ($stamp)"
    return
  fi
  echo "== building $name from $(grep -m1 -E '^require ' "$dir/go.mod" | cut -d' ' -f2-) (a cold build takes minutes)"
  local start=$SECONDS
  (cd "$dir" && GOTOOLCHAIN=$toolchain GOFLAGS=-mod=mod go build -trimpath -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "$stamp" > "$out/.$name.stamp"
  echo "== $name built in $((SECONDS - start)) s"
}

# Karpenter's KWOK provider (the real Karpenter with a cloud whose instances are Nodes) needs
# Go 1.26.9 or later: the go command fetches the toolchain its go.mod names from the module
# proxy. Its binary is also called kwok, so it is installed under another name. It shares
# no build with the others (another toolchain), so it builds beside them: on 2 cores the
# two builds fill each other's idle time (a cold run took 25 min for all, 19 for it alone).
karpenter_dir="$root/tools/test-servers/karpenter"
karpenter_go=$(sed -n 's/^toolchain //p' "$karpenter_dir/go.mod")
build karpenter-kwok "$karpenter_dir" sigs.k8s.io/karpenter/kwok "$karpenter_go" &
karpenter_pid=$!

build etcd "$root/tools/test-servers/etcd" .
build kube-apiserver "$root/tools/test-servers/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager "$root/tools/test-servers/kubernetes" k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler "$root/tools/test-servers/kubernetes" k8s.io/kubernetes/cmd/kube-scheduler
build kwok "$root/tools/test-servers/kwok" sigs.k8s.io/kwok/cmd/kwok
build ec2-metadata-mock "$root/tools/test-servers/ec2-metadata-mock" github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock
wait "$karpenter_pid" || { echo "karpenter-kwok: build failed" >&2; exit 1; }
# Its CRDs (NodePool, NodeClaim, NodeOverlay, CapacityBuffer, KWOKNodeClass), from the same
# module version, for the harness to install.
karpenter_mod=$(cd "$karpenter_dir" && GOTOOLCHAIN=$karpenter_go GOFLAGS=-mod=mod \
  go list -m -f '{{.Dir}}' sigs.k8s.io/karpenter)
mkdir -p "$out/karpenter-crds"
cp "$karpenter_mod"/kwok/charts/crds/*.yaml "$karpenter_mod"/kwok/apis/crds/*.yaml "$out/karpenter-crds/"
echo "== karpenter CRDs: $(ls "$out/karpenter-crds" | wc -l) files from $karpenter_mod"
