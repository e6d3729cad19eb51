// Small builders shared by every role. Resources are plain objects in protobufjs form (snake_case).
import type { ResourceObject } from '../envoy/encode.js';
import { nanosOfMillis } from '../model/durations.js';
import { flowControl, http2Keepalive } from '../model/defaults.js';

export const typeOf = {
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
} as const;

/** Milliseconds in the proto3 JSON form Envoy resources use: `0.5s`, `300s`, `0.000000001s`. */
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

/**
 * How long an originator or relay waits for a TCP connection to a terminator: one lost SYN is
 * retransmitted after 1 s and still makes it; a blackholed terminator fails the tunnel in 2 s.
 */
export const tunnelConnectTimeoutMs = 2000;

/** HTTP/2 keepalive of a tunnel connection: the defaults (model/defaults.ts) unless a Service sets its own. */
export function keepalive(
  intervalMs: number = http2Keepalive.intervalMs,
  timeoutMs: number = http2Keepalive.timeoutMs,
): ResourceObject {
  return { interval: duration(intervalMs), timeout: duration(timeoutMs) };
}

/** The receive windows of an HTTP/2 connection manager (terminators and relays: shared by every Service on it). */
export const serverWindows = {
  initial_stream_window_size: flowControl.initialStreamWindowSize,
  initial_connection_window_size: flowControl.initialConnectionWindowSize,
};

/** Stat prefixes become dotted Envoy stat names: keep them to one token. */
export function statPrefix(...parts: (string | number)[]): string {
  return parts.join('_').replace(/[^A-Za-z0-9_-]/g, '_');
}

/** JSON access log lines with what a tunnel operator looks for; `extra` adds role-specific fields. */
export function fileAccessLog(path: string, extra: Record<string, string> = {}): ResourceObject {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': typeOf.fileAccessLog,
      path,
      log_format: {
        json_format: {
          start_time: '%START_TIME%',
          connection_id: '%CONNECTION_ID%',
          downstream_remote: '%DOWNSTREAM_REMOTE_ADDRESS%',
          downstream_local: '%DOWNSTREAM_LOCAL_ADDRESS%',
          upstream_cluster: '%UPSTREAM_CLUSTER%',
          upstream_host: '%UPSTREAM_HOST%',
          bytes_received: '%BYTES_RECEIVED%',
          bytes_sent: '%BYTES_SENT%',
          duration_ms: '%DURATION%',
          response_flags: '%RESPONSE_FLAGS%',
          ...extra,
        },
      },
    },
  };
}

/**
 * A Service's own access log (tunnel-shim.io/access-log): a text format when it gives one (a line
 * ends each entry), else the same JSON fields as the node log. `filter` narrows a log shared by a
 * listener to this Service's requests.
 */
export function serviceAccessLog(
  path: string,
  format: string | undefined,
  extra: Record<string, string>,
  filter?: ResourceObject,
): ResourceObject {
  const log =
    format === undefined
      ? fileAccessLog(path, extra)
      : {
          name: 'envoy.access_loggers.file',
          typed_config: {
            '@type': typeOf.fileAccessLog,
            path,
            log_format: { text_format_source: { inline_string: `${format}\n` } },
          },
        };
  return filter ? { ...log, filter } : log;
}
