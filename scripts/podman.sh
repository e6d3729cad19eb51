#!/usr/bin/env bash
# podman with the settings of scripts/containers.conf and vfs storage, which work on any kernel (the
# build, `make image` and the container test all use the same store, so they find each other's images).
# PODMAN=podman make image uses your own podman settings instead.
exec env CONTAINERS_CONF="$(cd "$(dirname "$0")" && pwd)/containers.conf" podman --storage-driver vfs "$@"
