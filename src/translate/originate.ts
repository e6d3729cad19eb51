// Originate: a TCP listener per tunneled Service port whose tcp_proxy opens a CONNECT tunnel
// through a pooled HTTP/2 (or HTTP/1.1) cluster to the terminators at the Service's endpoints.
import type { Diagnostic } from '../model/diagnostics.js';
import type { Tunnel } from '../model/tunnel.js';
import { adsConfigSource, duration, fileAccessLog, http2Keepalive, socketAddress, statPrefix, typeOf } from './common.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import type { NodeView } from './view.js';

export function originateName(t: Tunnel): string {
  const base = `originate/${t.service.namespace}`;
  return t.via ? `${base}/${t.via.name}/${t.via.port}/${t.service.name}/${t.port}` : `${base}/${t.service.name}/${t.port}`;
}

/** Cluster metadata carrying the CONNECT authority, read by `tunneling_config.hostname` (see below). */
const metadataNamespace = 'tunnel_shim';

function tunnelCluster(t: Tunnel) {
  const http = t.settings.mode === 'h1' ? { http_protocol_options: {} } : { http2_protocol_options: { connection_keepalive: http2Keepalive } };
  return {
    name: originateName(t),
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource },
    connect_timeout: duration('5s'),
    lb_policy: 'ROUND_ROBIN',
    metadata: { filter_metadata: { [metadataNamespace]: { authority: t.authority } } },
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
  // A split picks the backend cluster first; Envoy evaluates the hostname after that choice, so the
  // chosen cluster's own authority names the backend to the terminator.
  const hostname = t.split ? `%CLUSTER_METADATA(${metadataNamespace}:authority)%` : t.authority;
  return t.settings.mode === 'h2-post' ? { hostname, use_post: true } : { hostname };
}

/** Where the listener sends connections: the Service's own cluster, or a weighted split. */
function clusterSpecifier(t: Tunnel, byKey: Map<string, Tunnel>) {
  if (!t.split) return { cluster: originateName(t) };
  const clusters = t.split.filter((s) => s.weight > 0).map((s) => ({ name: originateName(byKey.get(s.tunnelKey)!), weight: s.weight }));
  // Every weight is 0: the Service's own cluster, left without endpoints, refuses the connections.
  if (clusters.length === 0) return { cluster: originateName(t) };
  return { weighted_clusters: { clusters } };
}

function tunnelListener(t: Tunnel, address: string, view: NodeView, byKey: Map<string, Tunnel>) {
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
              ...clusterSpecifier(t, byKey),
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
  const byKey = new Map(tunnels.map((t) => [t.key, t]));
  for (const t of tunnels) {
    if (t.via) {
      resources.cluster.push({ name: originateName(t), object: tunnelCluster(t) });
      resources.endpoint.push({ name: originateName(t), object: tunnelEndpoints(t) });
      continue;
    }
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
    resources.endpoint.push({ name: originateName(t), object: t.split ? { cluster_name: originateName(t), endpoints: [] } : tunnelEndpoints(t) });
    resources.listener.push({ name: originateName(t), object: tunnelListener(t, address, view, byKey) });
  }
  return { resources, diagnostics };
}
