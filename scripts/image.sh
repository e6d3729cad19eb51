#!/usr/bin/env bash
# `make image`: builds the tunnel-shim image from Containerfile. BASE=IMAGE picks the base; without it,
# the public Node 20 image when it can be pulled, else a Debian base made here (scripts/container-base.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
PODMAN=${PODMAN:-scripts/podman.sh}
image=${1:-localhost/tunnel-shim:dev}
base=${BASE:-}
if [ -z "$base" ]; then
  public=$(sed -n 's/^ARG BASE=//p' Containerfile)
  if $PODMAN image exists "$public" 2>/dev/null || timeout 60 $PODMAN pull -q "$public" >/dev/null 2>&1; then
    base=$public
  else
    echo "image: $public cannot be pulled; building on a Debian base with Node 20 made here" >&2
    base=$(scripts/container-base.sh)
  fi
fi
version=$(node -p 'require("./package.json").version')
# A machine whose TLS to the npm registry is signed by its own CA (NODE_EXTRA_CA_CERTS) lends that CA to
# the build stage's npm; it is mounted for the build only and is not in the image.
ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  ca=(--volume "$NODE_EXTRA_CA_CERTS:/etc/build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/etc/build-ca.crt)
fi
echo "image: building $image on $base" >&2
$PODMAN build --layers=false --network host -f Containerfile "${ca[@]}" \
  --build-arg BASE="$base" --build-arg VERSION="$version" -t "$image" . >&2
echo "$image"
