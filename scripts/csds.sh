#!/usr/bin/env bash
# Asks a running shim for its clients' status over CSDS with grpcurl (installed with the protos it needs
# by scripts/setup.sh --test, as `make test` runs it; it needs Go), so nobody has to spell out grpcurl's
# proto flags:
#   scripts/csds.sh [XDS_ADDRESS] [NODE_ID]      (default 127.0.0.1:18000, every node)
set -euo pipefail
cd "$(dirname "$0")/.."
address=${1:-127.0.0.1:18000}
node=${2:-}
deps=node_modules/@grpc/grpc-js-xds/deps
if [ ! -x .cache/bin/grpcurl ] || [ ! -f .cache/protoc-gen-validate.dir ]; then
  echo "csds.sh: grpcurl is not installed here; run scripts/setup.sh --test first (it installs grpcurl with Go)" >&2
  exit 2
fi
request='{}'
if [ -n "$node" ]; then request="{\"node_matchers\":[{\"node_id\":{\"exact\":\"$node\"}}]}"; fi
protos=()
for p in envoy/service/status/v3/csds.proto envoy/config/listener/v3/listener.proto envoy/config/route/v3/route.proto \
  envoy/config/cluster/v3/cluster.proto envoy/config/endpoint/v3/endpoint.proto \
  envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto \
  envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto \
  envoy/extensions/filters/http/router/v3/router.proto envoy/extensions/upstreams/http/v3/http_protocol_options.proto \
  envoy/extensions/access_loggers/file/v3/file.proto envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto; do
  protos+=(-proto "$p")
done
exec .cache/bin/grpcurl -plaintext \
  -import-path "$(cat .cache/protoc-gen-validate.dir)" -import-path "$deps/envoy-api" -import-path "$deps/xds" -import-path "$deps/googleapis" \
  "${protos[@]}" -d "$request" "$address" envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus
