// Small builders shared by every role. Resources are plain objects in protobufjs form (snake_case).
import ms from 'ms';
import type { ResourceObject } from '../envoy/encode.js';

export const typeOf = {
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
} as const;

const envoyDuration = /^\d+(\.\d+)?(ms|s|m|h)$/;

/** Seconds in an Envoy-style duration (`500ms`, `1s`, `5m`, `1h`); `undefined` when malformed. */
export function parseDuration(text: string): number | undefined {
  if (!envoyDuration.test(text.trim())) return undefined;
  const millis = ms(text.trim() as ms.StringValue);
  return typeof millis === 'number' && Number.isFinite(millis) ? millis / 1000 : undefined;
}

/** A duration in the proto3 JSON form Envoy resources use ("1.5s"). */
export function duration(text: string): string {
  const seconds = parseDuration(text);
  if (seconds === undefined) throw new Error(`bad duration ${text}`);
  return `${seconds}s`;
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
 * HTTP/2 keepalive PINGs on tunnel connections (both sides; tunnel clusters unless a Service sets its
 * own): a peer that vanished without a FIN is noticed within interval (+15 % jitter) + timeout, at most
 * 9.75 s, instead of at the TCP timeout. A PING and its ACK are 17 bytes each: for 1,000 pooled
 * connections, PINGed from both ends, 1000 x 4 x 17 B / 5 s = 13.6 KB/s of HTTP/2 (README).
 */
export const http2Keepalive = { interval: duration('5s'), timeout: duration('4s') };

/**
 * How long an originator or relay waits for a TCP connection to a terminator: one lost SYN is
 * retransmitted after 1 s and still makes it; a blackholed terminator fails the tunnel in 2 s.
 */
export const tunnelConnectTimeout = duration('2s');

/**
 * HTTP/2 flow control on tunnel connections, both sides. Envoy's defaults give a stream the whole
 * connection window (256 MiB each), so a few tunnels whose backend stops reading fill the window and
 * stop every other tunnel on the pooled connection. A stream may hold at most its window, so with the
 * connection window 16 streams' worth, 15 stuck streams still leave room for the rest; buffers per
 * connection (both ends of every tunnel) are bounded likewise. Figures in the README.
 */
export const flowControl = {
  initialStreamWindowSize: 256 * 1024,
  initialConnectionWindowSize: 4 * 1024 * 1024,
  perConnectionBufferLimitBytes: 64 * 1024,
} as const;

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
