// Envoy field values every builder uses: type URLs, durations, socket addresses, the ADS config source,
// ECDS filter references and stat prefixes. Resources are plain objects in protobufjs form (snake_case).
import type { ResourceObject } from '../envoy/encode.js';
import { nanosOfMillis } from '../model/durations.js';

export const typeOf = {
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
} as const;

/** Milliseconds (the model's unit) in the proto3 JSON form Envoy resources use: `0.5s`, `300s`, `0.000000001s`. */
export function duration(ms: number): string {
  const nanos = nanosOfMillis(ms);
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${nanos / 1_000_000_000n}${fraction ? `.${fraction}` : ''}s`;
}

export function socketAddress(address: string, port: number): ResourceObject {
  return { socket_address: { address, port_value: port } };
}

export const adsConfigSource: ResourceObject = { ads: {}, resource_api_version: 'V3' };

/**
 * A network filter whose config comes over ECDS (a TypedExtensionConfig named `name`). Envoy drains a
 * filter chain whose bytes change and closes every connection on it when the drain time ends; a chain
 * that only names its connection manager keeps its bytes whatever the manager holds. A new manager
 * config applies to new connections (open ones keep theirs), and nothing is drained.
 */
export function discoveredFilter(name: string, typeUrl: string): ResourceObject {
  return { name, config_discovery: { config_source: adsConfigSource, type_urls: [typeUrl] } };
}

/** Stat prefixes become dotted Envoy stat names: keep them to one token. */
export function statPrefix(...parts: (string | number)[]): string {
  return parts.join('_').replace(/[^A-Za-z0-9_-]/g, '_');
}
