// Where CONNECT arrives, on terminators and relays: a listener whose one filter chain only names its
// HTTP connection manager, and that manager, served over ECDS under the listener's name.
//
// Many Services share such a listener, and Envoy drains a listener or chain whose bytes change (every
// pooled connection on it, and every tunnel riding those, is closed when the drain time ends). So
// nothing of a Service is in the listener: the manager carries the access logs (the one per-Service
// thing on it) and takes its routes over RDS. A new manager config reaches new connections only: a
// per-Service access log added later writes for pooled connections opened after it.
import type { ResourceObject } from '../envoy/encode.js';
import { connectServerHttp2Options, sharedListenerBufferLimit } from './connection-options.js';
import { adsConfigSource, discoveredFilter, duration, socketAddress, typeOf } from './envoy-fields.js';

/** The HTTP filters a CONNECT request passes: the router, which opens the upstream tunnel or TCP connection. */
function connectHttpFilters(): ResourceObject[] {
  return [{ name: 'envoy.filters.http.router', typed_config: { '@type': typeOf.router } }];
}

/** The connection manager named `name` (a TypedExtensionConfig), routed by the route configuration of that name. */
export function connectManager(name: string, statPrefix: string, accessLogs: ResourceObject[]): ResourceObject {
  return {
    name,
    typed_config: {
      '@type': typeOf.hcm,
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      rds: { route_config_name: name, config_source: adsConfigSource },
      http_filters: connectHttpFilters(),
      upgrade_configs: [{ upgrade_type: 'CONNECT' }],
      http2_protocol_options: connectServerHttp2Options(),
      // Tunnels are long-lived streams: the 5 minute default stream idle timeout would cut them.
      stream_idle_timeout: duration(0),
      ...(accessLogs.length ? { access_log: accessLogs } : {}),
    },
  };
}

export interface ConnectListenerOptions {
  /** Bind even when the address is not on the host yet (a pod IP): a failed bind fails the whole LDS update. */
  freebind?: boolean;
  chainName?: string;
}

/** The listener named `name` whose one chain runs the connection manager of that name (`connectManager`). */
export function connectListener(
  name: string,
  address: string,
  port: number,
  options: ConnectListenerOptions = {},
): ResourceObject {
  return {
    name,
    address: socketAddress(address, port),
    ...(options.freebind ? { freebind: true } : {}),
    traffic_direction: 'INBOUND',
    per_connection_buffer_limit_bytes: sharedListenerBufferLimit,
    // Originators pool many tunnels on few long-lived connections, and every stream stays on the
    // worker that accepted its connection: balance connections exactly, not by the kernel's hash.
    connection_balance_config: { exact_balance: {} },
    filter_chains: [
      { ...(options.chainName ? { name: options.chainName } : {}), filters: [discoveredFilter(name, typeOf.hcm)] },
    ],
  };
}
