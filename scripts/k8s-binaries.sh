#!/usr/bin/env bash
# Builds kube-apiserver and etcd from the Go module proxy (no release tarballs can be fetched
# here) into a per-version cache outside the repo, so every clone on this machine shares them.
# Idempotent: when both binaries exist it prints their paths and exits without touching Go.
#
# Output (stdout, last two lines):  KUBE_APISERVER=/path  and  ETCD=/path
# Build logs go to stderr.  Override the version with KUBE_VERSION=v1.X.Y.
set -euo pipefail

# v1.35.8 is the newest 1.35 patch on the proxy and was released with Go 1.26.5 (.go-version).
KUBE_VERSION="${KUBE_VERSION:-v1.35.8}"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/xds-tunnel-shim/k8s/${KUBE_VERSION}"
BIN_DIR="${CACHE_DIR}/bin"
APISERVER="${BIN_DIR}/kube-apiserver"
ETCD="${BIN_DIR}/etcd"

print_paths() {
  echo "KUBE_APISERVER=${APISERVER}"
  echo "ETCD=${ETCD}"
}

# Fast path: no Go, no lock, no network.
if [[ -x "$APISERVER" && -x "$ETCD" ]]; then
  print_paths
  exit 0
fi

log() { echo "[k8s-binaries] $*" >&2; }

GO="$(command -v go || true)"
[[ -z "$GO" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
[[ -n "$GO" ]] || { log "no Go toolchain found (PATH or /usr/local/go/bin/go)"; exit 1; }

mkdir -p "$BIN_DIR"
# Two callers (a test run and dev:apiserver) must not build into the same dirs at once.
exec 9>"${CACHE_DIR}/.lock"
flock 9
if [[ -x "$APISERVER" && -x "$ETCD" ]]; then print_paths; exit 0; fi

# Our wrapper modules need -mod=mod (go.sum is written as we go); a parent go.work must not
# capture them; the proxy (which also serves sum.golang.org through /sumdb) must be allowed.
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
if [[ "$("$GO" env GOPROXY)" == "off" || -z "$("$GO" env GOPROXY)" ]]; then
  export GOPROXY="https://proxy.golang.org,direct"
fi
log "$("$GO" version); GOPROXY=$("$GO" env GOPROXY) GOSUMDB=$("$GO" env GOSUMDB) GOTOOLCHAIN=$("$GO" env GOTOOLCHAIN)"

KUBE_MINOR_VERSION="${KUBE_VERSION#v1.}"              # 35.8
STAGING_VERSION="v0.${KUBE_MINOR_VERSION}"             # v0.35.8: published staging tags
GIT_MAJOR=1
GIT_MINOR="${KUBE_MINOR_VERSION%%.*}"

KUBE_WORK="${CACHE_DIR}/work/kube"
ETCD_WORK="${CACHE_DIR}/work/etcd"
mkdir -p "$KUBE_WORK" "$ETCD_WORK"

# k8s.io/kubernetes' own go.mod names every staging module as "k8s.io/x => ./staging/...";
# a consumer ignores those replaces, so the wrapper maps each one to its published tag.
# (go mod download -json reports its errors inside the JSON on stdout: keep it to show them.)
DL_JSON="$(cd "$KUBE_WORK" && "$GO" mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" 2>&1)" || true
KUBE_MOD="$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$DL_JSON")"
[[ -f "$KUBE_MOD" ]] || { log "go mod download -json k8s.io/kubernetes@${KUBE_VERSION} failed:"; echo "$DL_JSON" >&2; exit 1; }
STAGING_MODULES="$(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' "$KUBE_MOD")"
[[ -n "$STAGING_MODULES" ]] || { log "no staging replaces found in $KUBE_MOD"; exit 1; }
# The etcd to build is the one this release links (its go.mod pins go.etcd.io/etcd/server/v3).
ETCD_VERSION="$(sed -n 's#^[[:space:]]*go\.etcd\.io/etcd/server/v3[[:space:]]\+\(v[^[:space:]]*\).*#\1#p' "$KUBE_MOD" | head -n1)"
[[ -n "$ETCD_VERSION" ]] || { log "no go.etcd.io/etcd/server/v3 requirement in $KUBE_MOD"; exit 1; }
log "kube-apiserver ${KUBE_VERSION} (staging ${STAGING_VERSION}), etcd ${ETCD_VERSION}"

build_apiserver() {
  {
    echo "module xds-tunnel-shim.local/k8s-build/kube"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    for m in $STAGING_MODULES; do echo "	$m => $m ${STAGING_VERSION}"; done
    echo ")"
  } >"$KUBE_WORK/go.mod"
  rm -f "$KUBE_WORK/go.sum"
  local pkg=k8s.io/kubernetes/cmd/kube-apiserver
  # "go get" of the package adds every module it imports to go.mod/go.sum.
  (cd "$KUBE_WORK" && "$GO" get "${pkg}@${KUBE_VERSION}")
  local v="k8s.io/component-base/version" c="k8s.io/client-go/pkg/version" ld="-s -w" p
  for p in "$v" "$c"; do
    ld+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=${GIT_MAJOR} -X ${p}.gitMinor=${GIT_MINOR}"
    ld+=" -X ${p}.gitTreeState=clean"
  done
  log "go build ${pkg} (several minutes on 2 cores)"
  (cd "$KUBE_WORK" && "$GO" build -trimpath -ldflags "$ld" -o "${APISERVER}.tmp" "$pkg")
  mv -f "${APISERVER}.tmp" "$APISERVER"
}

build_etcd() {
  printf 'module xds-tunnel-shim.local/k8s-build/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$ETCD_WORK/go.mod"
  rm -f "$ETCD_WORK/go.sum"
  # The root package of go.etcd.io/etcd/server/v3 is etcd's main (it calls etcdmain.Main).
  (cd "$ETCD_WORK" && "$GO" get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
  log "go build go.etcd.io/etcd/server/v3"
  (cd "$ETCD_WORK" && "$GO" build -trimpath \
    -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" \
    -o "${ETCD}.tmp" go.etcd.io/etcd/server/v3)
  mv -f "${ETCD}.tmp" "$ETCD"
}

start=$SECONDS
[[ -x "$ETCD" ]] || build_etcd
[[ -x "$APISERVER" ]] || build_apiserver
log "done in $((SECONDS - start)) s"
"$ETCD" --version >&2
"$APISERVER" --version >&2
print_paths
