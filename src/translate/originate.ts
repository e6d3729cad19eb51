// Originate: a TCP listener per tunneled Service port whose tcp_proxy opens a CONNECT tunnel
// through a pooled HTTP/2 (or HTTP/1.1) cluster to the terminators at the Service's endpoints.
import type { Diagnostic } from '../model/diagnostics.js';
import type { Tunnel } from '../model/tunnel.js';
import { adsConfigSource, duration, fileAccessLog, http2Keepalive, socketAddress, statPrefix, typeOf } from './common.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import type { NodeView } from './view.js';

export function originateName(t: Tunnel): string {
  return `originate/${t.service.namespace}/${t.service.name}/${t.port}`;
}

function tunnelCluster(t: Tunnel) {
  const http = t.settings.mode === 'h1' ? { http_protocol_options: {} } : { http2_protocol_options: { connection_keepalive: http2Keepalive } };
  return {
    name: originateName(t),
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource },
    connect_timeout: duration('5s'),
    lb_policy: 'ROUND_ROBIN',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': typeOf.httpProtocolOptions, explicit_http_config: http },
    },
  };
}

/** One host per terminator address: the terminator beside an endpoint listens on its IP. */
function tunnelEndpoints(t: Tunnel) {
  const addresses = [...new Set(t.endpoints.map((e) => e.address))];
  return {
    cluster_name: originateName(t),
    endpoints: addresses.length === 0 ? [] : [{ lb_endpoints: addresses.map((a) => ({ endpoint: { address: socketAddress(a, t.settings.tunnelPort) } })) }],
  };
}

function tunnelingConfig(t: Tunnel) {
  if (t.settings.mode === 'h2-post') return { hostname: t.authority, use_post: true };
  return { hostname: t.authority };
}

function tunnelListener(t: Tunnel, address: string, view: NodeView) {
  const name = originateName(t);
  return {
    name,
    address: socketAddress(address, t.port),
    traffic_direction: 'OUTBOUND',
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: {
              '@type': typeOf.tcpProxy,
              stat_prefix: statPrefix('originate', t.service.namespace, t.service.name, t.port),
              cluster: name,
              tunneling_config: tunnelingConfig(t),
              ...(view.accessLog ? { access_log: [fileAccessLog(view.accessLog, { role: 'originate', authority: t.authority })] } : {}),
            },
          },
        ],
      },
    ],
  };
}

export function translateOriginate(tunnels: readonly Tunnel[], view: NodeView): { resources: ResourceSet; diagnostics: Diagnostic[] } {
  const resources = emptyResourceSet();
  const diagnostics: Diagnostic[] = [];
  const claimed = new Map<string, Tunnel>();
  for (const t of tunnels) {
    const address = view.listenAddress ?? t.clusterIP;
    if (!address) {
      diagnostics.push({
        severity: 'warning', reason: 'NoListenAddress', object: t.service, path: ['spec', 'clusterIP'], origin: t.origin,
        message: 'headless Service: originators need a listen address (tunnel-shim bootstrap --listen-address) to serve it',
      });
      continue;
    }
    const owner = claimed.get(`${address}:${t.port}`);
    if (owner) {
      diagnostics.push({
        severity: 'error', reason: 'DuplicateListenAddress', object: t.service, path: ['spec', 'ports'], origin: t.origin,
        message: `${address}:${t.port} is already the listener of Service ${owner.service.namespace}/${owner.service.name} on originators listening on ${address}`,
      });
      continue;
    }
    claimed.set(`${address}:${t.port}`, t);
    resources.cluster.push({ name: originateName(t), object: tunnelCluster(t) });
    resources.endpoint.push({ name: originateName(t), object: tunnelEndpoints(t) });
    resources.listener.push({ name: originateName(t), object: tunnelListener(t, address, view) });
  }
  return { resources, diagnostics };
}
