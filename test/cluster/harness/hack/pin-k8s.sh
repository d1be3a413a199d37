#!/usr/bin/env bash
# Regenerates go.mod for a Kubernetes version: requires k8s.io/kubernetes at that version and maps
# every staging module (which k8s.io/kubernetes resolves to ./staging/...) to its published tag.
# The list comes from that version's own go.mod, fetched through the Go module proxy.
# Usage: hack/pin-k8s.sh v1.36.3
set -euo pipefail
version=${1:?usage: pin-k8s.sh <k8s version, e.g. v1.36.3>}
cd "$(dirname "$0")/.."
staging_tag="v0.${version#v1.}"
gomod=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$gomod" ] || { echo "pin-k8s: no go.mod for k8s.io/kubernetes@${version}" >&2; exit 1; }

for module in $(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod"); do
  go mod edit -replace="${module}=${module}@${staging_tag}"
done
go mod edit -require="k8s.io/kubernetes@${version}"
godebug=$(sed -n 's/^godebug \(.*\)$/\1/p' "$gomod")
[ -z "$godebug" ] || go mod edit -godebug="$godebug"
# etcd at exactly the version Kubernetes already links, so minimal version selection upgrades nothing.
etcd=$(sed -n 's#^\s*go.etcd.io/etcd/server/v3 \(v[^ ]*\).*#\1#p' "$gomod")
go mod edit -require="go.etcd.io/etcd/server/v3@${etcd}"
go mod tidy
echo "pinned k8s.io/kubernetes ${version} (staging ${staging_tag}, etcd ${etcd})"
