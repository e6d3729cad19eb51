// grpcurl against the shim. scripts/setup.sh installs grpcurl and protoc-gen-validate (for its
// validate.proto, newer than the copy inside @grpc/grpc-js-xds, which grpcurl's strict parser needs)
// from the Go module proxy into .cache/; the Envoy protos come from the pinned npm package, as for
// the shim itself.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repo } from './cli.js';

const tools = path.join(repo, '.cache');

export function grpcurlBinary(): string {
  const bin = process.env.GRPCURL_BIN ?? path.join(tools, 'bin', 'grpcurl');
  if (!fs.existsSync(bin)) throw new Error(`grpcurl not found at ${bin}: run scripts/setup.sh (or make setup) first`);
  return bin;
}

function importPaths(): string[] {
  const pgv = fs.readFileSync(path.join(tools, 'protoc-gen-validate.dir'), 'utf8').trim();
  const deps = path.join(repo, 'node_modules/@grpc/grpc-js-xds/deps');
  return [pgv, path.join(deps, 'envoy-api'), path.join(deps, 'xds'), path.join(deps, 'googleapis')];
}

/** The protos grpcurl parses: CSDS plus every resource type an Any in a response may carry. */
const protos = [
  'envoy/service/status/v3/csds.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
];

export function grpcurl(args: string[], timeoutMs = 20_000): Promise<{ stdout: string; stderr: string; code: number }> {
  const protoArgs = [...importPaths().flatMap((p) => ['-import-path', p]), ...protos.flatMap((p) => ['-proto', p])];
  // Asynchronous on purpose: the shim under test may run in this very process.
  return new Promise((resolve) => {
    execFile(grpcurlBinary(), [...protoArgs, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
    );
  });
}
