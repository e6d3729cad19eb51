// Access logs: the node's own (bootstrap --access-log, JSON fields) and a Service's own
// (tunnel-shim.io/access-log). Each role says which fields it adds. Where many Services share what
// logs (a terminator's or relay's connection manager), a Service's log takes only its own requests.
import type { ResourceObject } from '../envoy/encode.js';
import type { Tunnel } from '../model/tunnel.js';
import { authorityFilter } from './connect-routes.js';
import { typeOf } from './envoy-fields.js';
import type { NodeView } from './view.js';

/** JSON access log lines with what a tunnel operator looks for; `extra` adds role-specific fields. */
function fileAccessLog(path: string, extra: Record<string, string>): ResourceObject {
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
 * A Service's own access log: a text format when it gives one (a line ends each entry), else the same
 * JSON fields as the node log. `filter` narrows a log shared by a listener to this Service's requests.
 */
function serviceAccessLog(t: Tunnel, extra: Record<string, string>, filter?: ResourceObject): ResourceObject {
  const path = t.settings.accessLog!;
  const format = t.settings.accessLogFormat;
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

export function nodeLogs(view: NodeView, fields: Record<string, string>): ResourceObject[] {
  return view.accessLog ? [fileAccessLog(view.accessLog, fields)] : [];
}

/** The logs of what carries one tunnel alone (an originator's tcp_proxy): the node's, then the Service's. */
export function tunnelLogs(view: NodeView, t: Tunnel, fields: Record<string, string>): ResourceObject[] {
  return [...nodeLogs(view, fields), ...(t.settings.accessLog ? [serviceAccessLog(t, fields)] : [])];
}

/** The logs of a connection manager many Services share: the node's, then each Service's, on its requests only. */
export function sharedLogs(view: NodeView, tunnels: readonly Tunnel[], fields: Record<string, string>) {
  const logged = tunnels.filter((t) => t.settings.accessLog);
  return [...nodeLogs(view, fields), ...logged.map((t) => sharedServiceLog(t, fields))];
}

/** A Service's log in a connection manager it shares: only its own requests. */
export function sharedServiceLog(t: Tunnel, fields: Record<string, string>): ResourceObject {
  return serviceAccessLog(t, fields, authorityFilter(t));
}
