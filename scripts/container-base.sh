#!/usr/bin/env bash
# Makes (once) and prints the name of a base image with Node 20 and npm, for machines that reach no
# image registry: a minimal Debian trixie (whose nodejs is 20) by debootstrap, plus npm from the npm
# registry (Debian's npm is some 300 packages), cached as a tarball under ~/.cache/xds-tunnel-shim and
# imported into podman's store.
set -euo pipefail
cd "$(dirname "$0")/.."
PODMAN=${PODMAN:-scripts/podman.sh}
RELEASE=trixie
NPM_VERSION=10.8.2
name=localhost/tunnel-shim-base:$RELEASE-node20-npm$NPM_VERSION
cache="${XDG_CACHE_HOME:-$HOME/.cache}/xds-tunnel-shim/container-base"
tarball=$cache/$RELEASE-node20-npm$NPM_VERSION.tar
if $PODMAN image exists "$name"; then echo "$name"; exit 0; fi
if [ ! -s "$tarball" ]; then
  if ! command -v debootstrap >/dev/null; then
    echo "container-base: debootstrap is missing (scripts/setup.sh --containers installs it)" >&2
    exit 1
  fi
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "container-base: debootstrap $RELEASE with nodejs, and npm $NPM_VERSION (once; a few minutes)" >&2
  debootstrap --variant=minbase --include=nodejs "$RELEASE" "$root" http://deb.debian.org/debian \
    >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  node_major=$(env -u NODE_EXTRA_CA_CERTS chroot "$root" node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" = 20 ] || { echo "container-base: $RELEASE ships Node $node_major, not 20" >&2; exit 1; }
  (cd "$root/tmp" && npm pack --silent "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$root/usr/lib/node_modules/npm"
  tar -xzf "$root/tmp/npm-$NPM_VERSION.tgz" -C "$root/usr/lib/node_modules/npm" --strip-components=1
  rm "$root/tmp/npm-$NPM_VERSION.tgz"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
  chmod 755 "$root"   # mktemp made it 0700: the image's / must be open to its non-root user
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi
$PODMAN import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["node"]' "$tarball" "$name" >/dev/null
echo "$name"
