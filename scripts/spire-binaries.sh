#!/usr/bin/env bash
# Builds spire-server and spire-agent from the Go module proxy (no release tarballs can be fetched
# here) into a per-version cache outside the repo, so every clone on this machine shares them.
# Idempotent: when both binaries exist it prints their paths and exits without touching Go.
#
# Output (stdout, last two lines):  SPIRE_SERVER=/path  and  SPIRE_AGENT=/path
# Build logs go to stderr.  Override the version with SPIRE_VERSION=v1.X.Y.  With --no-build it
# only prints the paths, or fails naming the setup step (tests use it: they never build).
set -euo pipefail

SPIRE_VERSION="${SPIRE_VERSION:-v1.13.3}"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/xds-tunnel-shim/spire/${SPIRE_VERSION}"
BIN_DIR="${CACHE_DIR}/bin"
SERVER="${BIN_DIR}/spire-server"
AGENT="${BIN_DIR}/spire-agent"

print_paths() {
  echo "SPIRE_SERVER=${SERVER}"
  echo "SPIRE_AGENT=${AGENT}"
}

# Fast path: no Go, no lock, no network.
if [[ -x "$SERVER" && -x "$AGENT" ]]; then
  print_paths
  exit 0
fi

log() { echo "[spire-binaries] $*" >&2; }
if [[ "${1:-}" == "--no-build" ]]; then
  log "spire-server and spire-agent ${SPIRE_VERSION} are not in ${BIN_DIR}: run scripts/setup.sh --test"
  exit 1
fi

GO="$(command -v go || true)"
[[ -z "$GO" && -x /usr/local/go/bin/go ]] && GO=/usr/local/go/bin/go
[[ -n "$GO" ]] || { log "no Go toolchain found (PATH or /usr/local/go/bin/go)"; exit 1; }

mkdir -p "$BIN_DIR"
# Two callers (two setup runs) must not build into the same dirs at once.
exec 9>"${CACHE_DIR}/.lock"
flock 9
if [[ -x "$SERVER" && -x "$AGENT" ]]; then print_paths; exit 0; fi

# The wrapper module needs -mod=mod (go.sum is written as we go); a parent go.work must not capture
# it; the proxy (which also serves sum.golang.org through /sumdb) must be allowed. spire-server's
# SQLite datastore (mattn/go-sqlite3) is cgo: keep CGO on.
export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false"
if [[ "$("$GO" env GOPROXY)" == "off" || -z "$("$GO" env GOPROXY)" ]]; then
  export GOPROXY="https://proxy.golang.org,direct"
fi
log "$("$GO" version); GOPROXY=$("$GO" env GOPROXY) GOSUMDB=$("$GO" env GOSUMDB) GOTOOLCHAIN=$("$GO" env GOTOOLCHAIN)"

WORK="${CACHE_DIR}/work"
mkdir -p "$WORK"
printf 'module xds-tunnel-shim.local/spire-build\n\ngo 1.25.0\n' >"$WORK/go.mod"
rm -f "$WORK/go.sum"

start=$SECONDS
# SPIRE is a program, not a library: the wrapper records both commands as tools of the module.
(cd "$WORK" && "$GO" get -tool "github.com/spiffe/spire/cmd/spire-server@${SPIRE_VERSION}" \
  "github.com/spiffe/spire/cmd/spire-agent@${SPIRE_VERSION}")
log "go get done in $((SECONDS - start)) s"
# SPIRE reports its version from pkg/common/version's gittag, which its datastore also parses as semver
# at start: without the "v" (else spire-server panics in sqlstore's init).
ld="-s -w -X github.com/spiffe/spire/pkg/common/version.gittag=${SPIRE_VERSION#v}"
for cmd in spire-server spire-agent; do
  log "go build github.com/spiffe/spire/cmd/${cmd} (minutes on 2 cores)"
  (cd "$WORK" && "$GO" build -trimpath -ldflags "$ld" -o "${BIN_DIR}/${cmd}.tmp" "github.com/spiffe/spire/cmd/${cmd}")
  mv -f "${BIN_DIR}/${cmd}.tmp" "${BIN_DIR}/${cmd}"
done
log "done in $((SECONDS - start)) s"
"$SERVER" --version >&2
"$AGENT" --version >&2
print_paths
