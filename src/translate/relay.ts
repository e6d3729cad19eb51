// Relay: an Envoy between callers and terminators that routes CONNECT by :authority to the next hop
// without terminating it (no connect_config: the CONNECT itself is forwarded, HTTP/1.1 or HTTP/2 in,
// the tunnel's protocol out). Services opt in with tunnel-shim.io/relay-port; the authorities are the
// same allowlist the terminators use (tunnel-shim.io/domains, exact or `*:1234`-style suffixes), so a
// relay never forwards what no terminator would accept. Anything else: plain HTTP goes to the node's
// configured HTTP backend or gets a 404 that says why; an unknown CONNECT gets a 404.
import type { ResourceObject } from '../envoy/encode.js';
import { domainsOf } from '../model/build.js';
import type { Tunnel } from '../model/tunnel.js';
import {
  adsConfigSource,
  discoveredFilter,
  duration,
  fileAccessLog,
  flowControl,
  http2Keepalive,
  serverWindows,
  socketAddress,
  statPrefix,
  typeOf,
} from './common.js';
import { tunnelCluster, tunnelEndpoints } from './originate.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import { lbMetadataMatch } from './subsets.js';
import { serviceLogs } from './terminate.js';
import { isAnyAddress, type NodeView } from './view.js';

export const relayHttpCluster = 'relay-http-backend';

export function relayName(port: number): string {
  return `relay/${port}`;
}

function relayClusterName(t: Tunnel): string {
  return `relay/${t.service.namespace}/${t.service.name}/${t.port}`;
}

const relayLogFields = {
  role: 'relay',
  method: '%REQ(:METHOD)%',
  authority: '%REQ(:AUTHORITY)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
};

/** Served over ECDS, as the terminator's are: a relayed Service's access log changes no listener (terminate.ts). */
function relayManager(port: number, view: NodeView, tunnels: readonly Tunnel[]) {
  const logs: ResourceObject[] = [
    ...(view.accessLog ? [fileAccessLog(view.accessLog, relayLogFields)] : []),
    ...serviceLogs(tunnels, relayLogFields),
  ];
  return {
    name: relayName(port),
    typed_config: {
      '@type': typeOf.hcm,
      stat_prefix: statPrefix('relay', port),
      codec_type: 'AUTO',
      rds: { route_config_name: relayName(port), config_source: adsConfigSource },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': typeOf.router } }],
      upgrade_configs: [{ upgrade_type: 'CONNECT' }],
      http2_protocol_options: { allow_connect: true, connection_keepalive: http2Keepalive, ...serverWindows },
      stream_idle_timeout: duration('0s'),
      ...(logs.length ? { access_log: logs } : {}),
    },
  };
}

function fallbackHost(view: NodeView) {
  const unknownConnect = {
    match: { connect_matcher: {} },
    direct_response: { status: 404, body: { inline_string: 'tunnel-shim relay: no tunnel for this authority\n' } },
  };
  const http = view.relayHttpBackend
    ? { match: { prefix: '/' }, route: { cluster: relayHttpCluster } }
    : {
        match: { prefix: '/' },
        direct_response: {
          status: 404,
          body: { inline_string: 'tunnel-shim relay: plain HTTP is not routed here (no --relay-http-backend)\n' },
        },
      };
  return { name: 'fallback', domains: ['*'], routes: [unknownConnect, http] };
}

/** With sidecar placement the relay picks the endpoint, so it applies the Service's affinity and subset. */
function endpointPolicy(t: Tunnel) {
  if (t.settings.placement !== 'sidecar') return {};
  const match = lbMetadataMatch(t.settings);
  return {
    ...(t.settings.hashPolicy === 'source-ip' ? { hash_policy: [{ connection_properties: { source_ip: true } }] } : {}),
    ...(match ? { metadata_match: match } : {}),
  };
}

export function translateRelay(tunnels: readonly Tunnel[], view: NodeView): { resources: ResourceSet } {
  const resources = emptyResourceSet();
  // TCPRoute backends are reached through their parent's originator listener, never relayed on their own.
  const relayed = tunnels.filter((t) => t.settings.relayPort !== undefined && !t.via);
  const ports = [...new Set(relayed.map((t) => t.settings.relayPort!))].sort((a, b) => a - b);
  for (const port of ports) {
    const onPort = relayed.filter((t) => t.settings.relayPort === port);
    const hosts = onPort.map((t) => {
      const cluster = relayClusterName(t);
      resources.cluster.push({ name: cluster, object: tunnelCluster(t, view, cluster) });
      resources.endpoint.push({ name: cluster, object: tunnelEndpoints(t, cluster) });
      return {
        name: `${t.service.namespace}/${t.service.name}:${t.port}`,
        domains: domainsOf(t),
        // No connect_config: the CONNECT goes on to the terminator, which alone opens the TCP connection.
        routes: [{ match: { connect_matcher: {} }, route: { cluster, timeout: duration('0s'), ...endpointPolicy(t) } }],
      };
    });
    resources.route.push({
      name: relayName(port),
      object: { name: relayName(port), virtual_hosts: [...hosts, fallbackHost(view)] },
    });
    resources.extension.push({ name: relayName(port), object: relayManager(port, view, onPort) });
    resources.listener.push({
      name: relayName(port),
      object: {
        name: relayName(port),
        address: socketAddress(isAnyAddress(view.listenAddress) ? '0.0.0.0' : view.listenAddress!, port),
        traffic_direction: 'INBOUND',
        per_connection_buffer_limit_bytes: flowControl.perConnectionBufferLimitBytes,
        connection_balance_config: { exact_balance: {} },
        filter_chains: [{ filters: [discoveredFilter(relayName(port), typeOf.hcm)] }],
      },
    });
  }
  if (ports.length && view.relayHttpBackend) {
    const i = view.relayHttpBackend.lastIndexOf(':');
    const host = view.relayHttpBackend.slice(0, i).replace(/^\[|\]$/g, '');
    resources.cluster.push({
      name: relayHttpCluster,
      object: {
        name: relayHttpCluster,
        type: 'STATIC',
        connect_timeout: duration('5s'),
        load_assignment: {
          cluster_name: relayHttpCluster,
          endpoints: [
            {
              lb_endpoints: [
                { endpoint: { address: socketAddress(host, Number(view.relayHttpBackend.slice(i + 1))) } },
              ],
            },
          ],
        },
      },
    });
  }
  return { resources };
}
