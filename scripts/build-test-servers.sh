#!/usr/bin/env bash
# Builds the servers the tests start (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok, ec2-metadata-mock) from their Go modules, into $BOOSTER_TEST_SERVERS
# (default ~/.cache/aws-spots-booster/bin). Idempotent: a binary whose module files have
# not changed is not rebuilt. Go's own caches (~/go/pkg/mod, ~/.cache/go-build) make a
# rebuild after a change incremental.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BOOSTER_TEST_SERVERS:-$HOME/.cache/aws-spots-booster/bin}
mkdir -p "$out"
command -v go >/dev/null || { echo "go not found: install Go 1.24+ to build the test servers" >&2; exit 1; }

# build NAME MODULE_DIR PACKAGE
build() {
  local name=$1 dir=$2 pkg=$3 stamp
  stamp=$(cat "$dir/go.mod" "$dir/go.sum" "$dir"/*.go | sha256sum | cut -c1-16)
  if [ -x "$out/$name" ] && [ "$(cat "$out/.$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "== $name: cached ($stamp)"
    return
  fi
  echo "== building $name from $(grep -m1 -E '^require ' "$dir/go.mod" | cut -d' ' -f2-) (a cold build takes minutes)"
  local start=$SECONDS
  (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "$stamp" > "$out/.$name.stamp"
  echo "== $name built in $((SECONDS - start)) s"
}

build etcd "$root/tools/test-servers/etcd" .
build kube-apiserver "$root/tools/test-servers/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager "$root/tools/test-servers/kubernetes" k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler "$root/tools/test-servers/kubernetes" k8s.io/kubernetes/cmd/kube-scheduler
build kwok "$root/tools/test-servers/kwok" sigs.k8s.io/kwok/cmd/kwok
build ec2-metadata-mock "$root/tools/test-servers/ec2-metadata-mock" github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock
