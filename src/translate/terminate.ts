// Terminate: per tunnel port, a listener on each endpoint IP with an HTTP connection manager that
// accepts CONNECT only for the authorities it was told about (no catch-all virtual host: never an
// open proxy).
//
// Sidecar placement: the originator already chose the endpoint by connecting to its IP, so the routes
// of an endpoint IP's listener go to the backend on that very IP: no second round of load balancing.
// Gateway placement: the route goes to a cluster of all the Service's endpoints, balanced here.
//
// Many Services share a listener, and Envoy drains a listener or chain whose bytes change (every
// pooled connection on it, and every tunnel riding those, is closed when the drain time ends). So
// nothing of a Service is in a listener: its one chain names its HTTP connection manager, served over
// ECDS under the listener's name; the manager carries the access logs (the one per-Service thing that
// lives on it), and routes come over RDS. A new manager config reaches new connections only: a
// per-Service access log added later writes for pooled connections opened after it.
import type { Tunnel } from '../model/tunnel.js';
import { isIP } from 'node:net';
import type { ResourceObject } from '../envoy/encode.js';
import { domainsOf } from '../model/build.js';
import {
  adsConfigSource,
  discoveredFilter,
  duration,
  fileAccessLog,
  flowControl,
  http2Keepalive,
  serverWindows,
  serviceAccessLog,
  socketAddress,
  statPrefix,
  typeOf,
} from './common.js';
import { bufferLimit, sourceIpHeader } from './originate.js';
import { endpointMetadata, lbMetadataMatch, subsetConfig } from './subsets.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import { isAnyAddress, viewKey, type NodeView } from './view.js';
import { noMemo, objectId, type PieceMemo } from './memo.js';
import { addressesOf } from './scope.js';

export function terminateRouteName(port: number, ip?: string): string {
  return ip ? `terminate/${port}/${ip}` : `terminate/${port}`;
}

function backendClusterName(t: Tunnel, ip?: string): string {
  const base = `backend/${t.service.namespace}/${t.service.name}/${t.port}`;
  return ip ? `${base}/${ip}` : base;
}

/** Matches the requests of one tunnel by `:authority`, so a per-Service log on a shared listener logs only its own. */
export function authorityFilter(t: Tunnel): ResourceObject {
  const filters = domainsOf(t).map((d) => ({
    header_filter: {
      header: { name: ':authority', string_match: d.startsWith('*') ? { suffix: d.slice(1) } : { exact: d } },
    },
  }));
  return filters.length === 1 ? filters[0]! : { or_filter: { filters } };
}

export function serviceLogs(tunnels: readonly Tunnel[], extra: Record<string, string>): ResourceObject[] {
  return tunnels
    .filter((t) => t.settings.accessLog)
    .map((t) => serviceAccessLog(t.settings.accessLog!, t.settings.accessLogFormat, extra, authorityFilter(t)));
}

const terminateLogFields = {
  role: 'terminate',
  method: '%REQ(:METHOD)%',
  path: '%REQ(:PATH)%',
  authority: '%REQ(:AUTHORITY)%',
  protocol: '%PROTOCOL%',
  response_code: '%RESPONSE_CODE%',
};

/**
 * The connection manager of one endpoint IP's listener (served over ECDS, see `discoveredFilter`):
 * its routes, and the access logs of the Services routed on it.
 */
function connectHttpManager(port: number, routeName: string, view: NodeView, tunnels: readonly Tunnel[]) {
  const logs = [
    ...(view.accessLog ? [fileAccessLog(view.accessLog, terminateLogFields)] : []),
    ...serviceLogs(tunnels, terminateLogFields),
  ];
  return {
    name: routeName,
    typed_config: {
      '@type': typeOf.hcm,
      stat_prefix: statPrefix('terminate', port),
      codec_type: 'AUTO',
      rds: { route_config_name: routeName, config_source: adsConfigSource },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': typeOf.router } }],
      upgrade_configs: [{ upgrade_type: 'CONNECT' }],
      http2_protocol_options: { allow_connect: true, connection_keepalive: http2Keepalive, ...serverWindows },
      // Tunnels are long-lived streams: the 5 minute default stream idle timeout would cut them.
      stream_idle_timeout: duration('0s'),
      ...(logs.length ? { access_log: logs } : {}),
    },
  };
}

/**
 * A tunnel's virtual host: only its own authorities, only its own way in (CONNECT, or POST on exactly
 * the configured path for h2-post). Gateway placement balances here, so its policies ride the route.
 */
function connectVirtualHost(t: Tunnel, cluster: string) {
  const s = t.settings;
  const post = s.mode === 'h2-post';
  const gateway = s.placement === 'gateway';
  const match = post
    ? { path: s.postPath ?? '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }
    : { connect_matcher: {} };
  const metadataMatch = gateway ? lbMetadataMatch(s) : undefined;
  return {
    name: `${t.service.namespace}/${t.service.name}:${t.port}`,
    domains: domainsOf(t),
    routes: [
      {
        match,
        route: {
          cluster,
          upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: post ? { allow_post: true } : {} }],
          // A route timeout (15 s by default) would cut a tunnel: tunnels end when either side closes.
          timeout: duration('0s'),
          ...(gateway && s.hashPolicy === 'source-ip'
            ? { hash_policy: [{ header: { header_name: sourceIpHeader } }] }
            : {}),
          ...(metadataMatch ? { metadata_match: metadataMatch } : {}),
        },
      },
    ],
  };
}

function staticCluster(name: string, t: Tunnel, hosts: { address: string; port: number }[]) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: duration('5s'),
    per_connection_buffer_limit_bytes: bufferLimit(t.settings),
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: hosts.map((h) => ({ endpoint: { address: socketAddress(h.address, h.port) } })) }],
    },
  };
}

function edsCluster(name: string, t: Tunnel) {
  const subsets = subsetConfig(t.settings);
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: adsConfigSource },
    connect_timeout: duration('5s'),
    per_connection_buffer_limit_bytes: bufferLimit(t.settings),
    lb_policy: t.settings.lbPolicy ?? 'ROUND_ROBIN',
    ...(subsets ? { lb_subset_config: subsets } : {}),
  };
}

/**
 * One listener per endpoint IP rather than one per port with a chain per IP: Envoy 1.40 crashes on
 * an ECDS update after an in-place filter chain update of a listener whose filters come over ECDS
 * (seen in test/e2e/isolation.test.ts), and a listener whose bytes never change is never updated.
 */
function endpointListener(name: string, ip: string, port: number) {
  return {
    name,
    address: socketAddress(ip, port),
    // A pod IP may not be on the host yet: bind anyway (a failed bind would fail the whole LDS update).
    freebind: true,
    traffic_direction: 'INBOUND',
    // The tunnel side of every Service on this IP: HTTP/2 frames in flight, not Service data.
    per_connection_buffer_limit_bytes: flowControl.perConnectionBufferLimitBytes,
    // Originators pool many tunnels on few long-lived connections, and every stream stays on the
    // worker that accepted its connection: balance connections exactly, not by the kernel's hash.
    connection_balance_config: { exact_balance: {} },
    filter_chains: [{ name: `endpoint/${ip}`, filters: [discoveredFilter(name, typeOf.hcm)] }],
  };
}

export function translateTerminate(
  tunnels: readonly Tunnel[],
  view: NodeView,
  memo: PieceMemo = noMemo,
): { resources: ResourceSet } {
  const resources = emptyResourceSet();
  const boundTo = isAnyAddress(view.listenAddress) ? undefined : view.listenAddress;
  // Unbound, a terminator serves the endpoint IPs of its wildcard's family, as a listener on 0.0.0.0
  // (IPv4 only) or :: (IPv6 only, Envoy's default) would.
  const family = view.listenAddress === '::' ? 6 : 4;
  const serves = (ip: string) => (boundTo ? ip === boundTo : isIP(ip) === family);
  const byPort = new Map<number, Tunnel[]>();
  for (const t of tunnels) {
    const list = byPort.get(t.settings.tunnelPort);
    if (list) list.push(t);
    else byPort.set(t.settings.tunnelPort, [t]);
  }
  const ports = [...byPort.keys()].sort((a, b) => a - b);
  for (const port of ports) {
    const onPort = byPort.get(port)!;
    const gatewayHosts: ResourceObject[] = [];
    const gatewayTunnels: Tunnel[] = [];
    const sidecarHosts = new Map<string, ResourceObject[]>();
    const sidecarTunnels = new Map<string, Tunnel[]>();
    const gatewayIps = new Set<string>();
    // One virtual host per authority: a Service that is also a TCPRoute backend is served once.
    const seen = new Set<string>();
    // Per-tunnel pieces are memoised (translate/memo.ts); only the per-port assembly below is redone.
    for (const t of onPort) {
      if (seen.has(domainsOf(t).join(','))) continue;
      seen.add(domainsOf(t).join(','));
      if (t.settings.placement === 'gateway') {
        const name = backendClusterName(t);
        resources.cluster.push({ name, owner: t, piece: 'gw-cluster', object: () => edsCluster(name, t) });
        resources.endpoint.push({
          name,
          owner: t,
          piece: 'gw-endpoints',
          object: () => {
            const lbEndpoints = t.endpoints.map((e) => {
              const metadata = endpointMetadata(t.settings, e.labels);
              return { endpoint: { address: socketAddress(e.address, e.port) }, ...(metadata ? { metadata } : {}) };
            });
            return { cluster_name: name, endpoints: lbEndpoints.length ? [{ lb_endpoints: lbEndpoints }] : [] };
          },
        });
        gatewayHosts.push(memo.piece(t, 'gw-vhost', () => connectVirtualHost(t, name)));
        gatewayTunnels.push(t);
        // Originators dial the Service's endpoint IPs; the terminator there balances over all of them.
        for (const ip of addressesOf(t)) if (serves(ip)) gatewayIps.add(ip);
        continue;
      }
      const ips = addressesOf(t).filter(serves);
      for (const ip of ips) {
        const name = backendClusterName(t, ip);
        const hosts = () => t.endpoints.filter((e) => e.address === ip);
        const cluster = () => staticCluster(name, t, hosts());
        resources.cluster.push({ name, owner: t, piece: `cluster|${ip}`, object: cluster });
        const host = memo.piece(t, `vhost|${ip}`, () => connectVirtualHost(t, name));
        if (!sidecarHosts.has(ip)) {
          sidecarHosts.set(ip, []);
          sidecarTunnels.set(ip, []);
        }
        sidecarHosts.get(ip)!.push(host);
        sidecarTunnels.get(ip)!.push(t);
      }
    }
    // A listener per endpoint IP, and none for any other address: a connection that arrives before its
    // IP's listener exists is refused, so a pooled connection can never stick to a listener that lacks
    // its routes (it would answer 404 for as long as the connection lives).
    const ips = [...new Set([...sidecarHosts.keys(), ...gatewayIps])].sort();
    for (const ip of ips) {
      const name = terminateRouteName(port, ip);
      const hosts = [...(sidecarHosts.get(ip) ?? []), ...gatewayHosts];
      resources.route.push({ name, object: { name, virtual_hosts: hosts }, key: `${hosts.map(objectId).join(',')}` });
      // Only the Services routed on this IP log here; their logs change no listener (ECDS).
      const logged = [...(sidecarTunnels.get(ip) ?? []), ...gatewayTunnels].filter((t) => t.settings.accessLog);
      resources.extension.push({
        name,
        object: () => connectHttpManager(port, name, view, logged),
        key: `${viewKey(view)}|${logged.map(objectId).join(',')}`,
      });
      // The same bytes for as long as the IP has a Service: never modified, only added and removed.
      resources.listener.push({ name, key: 'endpoint-listener', object: () => endpointListener(name, ip, port) });
    }
  }
  return { resources };
}
