// Originate: a TCP listener per tunneled Service port whose tcp_proxy opens a CONNECT tunnel
// through a pooled HTTP/2 (or HTTP/1.1) cluster to the terminators at the Service's endpoints.
import type { Diagnostic } from '../model/diagnostics.js';
import type { Tunnel } from '../model/tunnel.js';
import { tunnelLogs } from './access-log.js';
import { sourceIpHeader } from './connect-routes.js';
import { bufferLimit } from './connection-options.js';
import { duration, socketAddress, statPrefix, typeOf } from './envoy-fields.js';
import { mtlsModeOf } from '../model/mtls.js';
import { tlsPiece } from './tls.js';
import { noMemo, type PieceMemo } from './memo.js';
import { emptyResourceSet, type NamedResource, type ResourceSet } from './resources.js';
import { lbMetadataMatch } from './subsets.js';
import { clusterAuthority, picksEndpoint, tunnelCluster, tunnelEndpoints } from './tunnel-cluster.js';
import type { NodeView } from './view.js';

export function originateName(t: Tunnel): string {
  const base = `originate/${t.service.namespace}`;
  return t.via
    ? `${base}/${t.via.name}/${t.via.port}/${t.service.name}/${t.port}`
    : `${base}/${t.service.name}/${t.port}`;
}

function tunnelingConfig(t: Tunnel) {
  const s = t.settings;
  const headers = [...(s.headersToAdd ?? [])];
  if (s.hashPolicy === 'source-ip' && s.placement === 'gateway')
    headers.push({ name: sourceIpHeader, value: '%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%' });
  return {
    // A split picks the backend cluster first; Envoy evaluates the hostname after that choice, so the
    // chosen cluster's own authority names the backend to the terminator.
    hostname: t.split ? clusterAuthority : (s.hostname ?? t.authority),
    ...(s.mode === 'h2-post' ? { use_post: true, post_path: s.postPath ?? '/' } : {}),
    ...(headers.length
      ? {
          headers_to_add: headers.map((h) => ({
            header: { key: h.name, value: h.value },
            append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
          })),
        }
      : {}),
    ...(s.propagateResponseHeaders !== undefined ? { propagate_response_headers: s.propagateResponseHeaders } : {}),
    ...(s.propagateResponseTrailers !== undefined ? { propagate_response_trailers: s.propagateResponseTrailers } : {}),
  };
}

function tcpProxyPolicy(t: Tunnel) {
  const s = t.settings;
  // With a split, each weighted cluster carries its own backend's metadata_match instead.
  const match = picksEndpoint(t) && !t.split ? lbMetadataMatch(s) : undefined;
  return {
    ...(s.idleTimeoutMs !== undefined ? { idle_timeout: duration(s.idleTimeoutMs) } : {}),
    ...(s.maxDownstreamConnectionDurationMs !== undefined
      ? { max_downstream_connection_duration: duration(s.maxDownstreamConnectionDurationMs) }
      : {}),
    ...(s.maxConnectAttempts !== undefined ? { max_connect_attempts: s.maxConnectAttempts } : {}),
    ...(s.hashPolicy === 'source-ip' ? { hash_policy: [{ source_ip: {} }] } : {}),
    ...(match ? { metadata_match: match } : {}),
  };
}

function accessLogs(t: Tunnel, view: NodeView) {
  const logs = tunnelLogs(view, t, { role: 'originate', authority: t.authority });
  return logs.length ? { access_log: logs } : {};
}

/** Where the listener sends connections: the Service's own cluster, or a weighted split. */
function clusterSpecifier(t: Tunnel, byKey: () => Map<string, Tunnel>) {
  if (!t.split) return { cluster: originateName(t) };
  const clusters = t.split
    .filter((s) => s.weight > 0)
    .map((s) => {
      const backend = byKey().get(s.tunnelKey)!;
      // A backend Service's own metadata-match narrows its share to the Pods with those labels.
      const match = picksEndpoint(backend) ? lbMetadataMatch(backend.settings) : undefined;
      return { name: originateName(backend), weight: s.weight, ...(match ? { metadata_match: match } : {}) };
    });
  // Every weight is 0: the Service's own cluster, left without endpoints, refuses the connections.
  if (clusters.length === 0) return { cluster: originateName(t) };
  return { weighted_clusters: { clusters } };
}

function tunnelListener(t: Tunnel, address: string, view: NodeView, byKey: () => Map<string, Tunnel>) {
  const name = originateName(t);
  return {
    name,
    address: socketAddress(address, t.port),
    traffic_direction: 'OUTBOUND',
    per_connection_buffer_limit_bytes: bufferLimit(t.settings),
    // SNI can only choose the authority if something reads the ClientHello first.
    ...(t.settings.hostname?.includes('%REQUESTED_SERVER_NAME%')
      ? {
          listener_filters: [
            { name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': typeOf.tlsInspector } },
          ],
        }
      : {}),
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
              ...tcpProxyPolicy(t),
              ...accessLogs(t, view),
            },
          },
        ],
      },
    ],
  };
}

export function translateOriginate(
  tunnels: readonly Tunnel[],
  view: NodeView,
  memo: PieceMemo = noMemo,
  certified = false,
): { resources: ResourceSet; diagnostics: Diagnostic[] } {
  const resources = emptyResourceSet();
  const diagnostics: Diagnostic[] = [];
  const claimed = new Map<string, Tunnel>();
  // Only splits look tunnels up by key: the map is made once, for the first split, not on every translation.
  let byKeyMap: Map<string, Tunnel> | undefined;
  const byKey = () => (byKeyMap ??= new Map(tunnels.map((t) => [t.key, t])));
  // Only auto Services depend on whether the node has its certificate yet: the others keep their pieces.
  const tlsPieces = { plain: tlsPiece(view), certified: tlsPiece(view, certified) };
  const viewPieces = {
    plain: `entries|${view.listenAddress}|${view.accessLog ?? ''}${tlsPieces.plain}`,
    certified: `entries|${view.listenAddress}|${view.accessLog ?? ''}${tlsPieces.certified}`,
  };
  for (const t of tunnels) {
    const tlsCertified = certified && mtlsModeOf(t) === 'auto';
    const which = tlsCertified ? 'certified' : 'plain';
    const tls = tlsPieces[which];
    if (t.via) {
      const name = originateName(t);
      resources.cluster.push({ name, object: tunnelCluster(t, name, view, tlsCertified) });
      resources.endpoint.push({ name, object: tunnelEndpoints(t, name) });
      continue;
    }
    const address = view.listenAddress ?? t.clusterIP;
    if (!address) {
      diagnostics.push({
        severity: 'warning',
        reason: 'NoListenAddress',
        object: t.service,
        path: ['spec', 'clusterIP'],
        origin: t.origin,
        message:
          'headless Service: originators need a listen address (tunnel-shim bootstrap --listen-address) to serve it',
      });
      continue;
    }
    const owner = claimed.get(`${address}:${t.port}`);
    if (owner) {
      diagnostics.push({
        severity: 'error',
        reason: 'DuplicateListenAddress',
        object: t.service,
        path: ['spec', 'ports'],
        origin: t.origin,
        message:
          `${address}:${t.port} is already the listener of Service ${owner.service.namespace}/` +
          `${owner.service.name} on originators listening on ${address}`,
      });
      continue;
    }
    claimed.set(`${address}:${t.port}`, t);
    // A split's listener names its backends' clusters, so it is rebuilt (and compared by content).
    if (t.split) {
      const name = originateName(t);
      const piece = `cluster${tls}`;
      resources.cluster.push({ name, owner: t, piece, object: () => tunnelCluster(t, name, view, tlsCertified) });
      resources.endpoint.push({ name, object: { cluster_name: name, endpoints: [] } });
      resources.listener.push({ name, object: tunnelListener(t, address, view, byKey) });
      continue;
    }
    // The same three entries for as long as the tunnel object lives (per listen address and log):
    // the encoder then knows them by identity, and their objects are built only when first encoded.
    const entries = memo.piece(
      t,
      view.listenAddress === undefined ? `entries|${address}|${view.accessLog ?? ''}${tls}` : viewPieces[which],
      () => tunnelEntries(t, address, view, tls, tlsCertified),
    );
    resources.cluster.push(entries.cluster);
    resources.endpoint.push(entries.endpoint);
    resources.listener.push(entries.listener);
  }
  return { resources, diagnostics };
}

function tunnelEntries(t: Tunnel, address: string, view: NodeView, tls: string, certified: boolean) {
  const name = originateName(t);
  const piece = `listener|${address}|${view.accessLog ?? ''}`;
  return {
    cluster: { name, owner: t, piece: `cluster${tls}`, object: () => tunnelCluster(t, name, view, certified) },
    endpoint: { name, owner: t, piece: 'endpoints', object: () => tunnelEndpoints(t, name) },
    // Not a split: its listener looks up no other tunnel.
    listener: { name, owner: t, piece, object: () => tunnelListener(t, address, view, () => new Map()) },
  } satisfies Record<string, NamedResource>;
}
