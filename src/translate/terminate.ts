// Terminate: per tunnel port, a listener on each endpoint IP with an HTTP connection manager that
// accepts CONNECT only for the authorities it was told about (no catch-all virtual host: never an
// open proxy).
//
// Sidecar placement: the originator already chose the endpoint by connecting to its IP, so the routes
// of an endpoint IP's listener go to the backend on that very IP: no second round of load balancing.
// Gateway placement: the route goes to a cluster of all the Service's endpoints, balanced here.
//
// Many Services share a listener; connect-manager.ts says how nothing of a Service lands in it.
import { isIP } from 'node:net';
import type { ResourceObject } from '../envoy/encode.js';
import { domainsOf } from '../model/domains.js';
import type { Tunnel } from '../model/tunnel.js';
import { nodeLogs, sharedServiceLog } from './access-log.js';
import { balancedBackendCluster, balancedBackendEndpoints, staticCluster } from './backend-cluster.js';
import { connectListener, connectManager } from './connect-manager.js';
import { terminatingVirtualHost } from './connect-routes.js';
import { bufferLimit } from './connection-options.js';
import { discoveredFilter, statPrefix, typeOf } from './envoy-fields.js';
import { rbacFilter } from './rbac.js';
import { downstreamTransportSocket, hasCertificates, peerLogFields, routedOn, tlsInspector, tlsPiece } from './tls.js';
import { contentKey, noMemo, type PieceMemo } from './memo.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import { addressesOf } from './scope.js';
import { isAnyAddress, viewKey, type NodeView } from './view.js';

export function terminateRouteName(port: number, ip?: string): string {
  return ip ? `terminate/${port}/${ip}` : `terminate/${port}`;
}

function backendClusterName(t: Tunnel, ip?: string): string {
  const base = `backend/${t.service.namespace}/${t.service.name}/${t.port}`;
  return ip ? `${base}/${ip}` : base;
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
 * One listener per endpoint IP rather than one per port with a chain per IP: Envoy 1.40 crashes on
 * an ECDS update after an in-place filter chain update of a listener whose filters come over ECDS
 * (seen in test/e2e/isolation.test.ts), and a listener whose bytes never change is never updated.
 */
function endpointListener(name: string, ip: string, port: number, view: NodeView) {
  // A pod IP may not be on the host yet: bind anyway.
  const listener = connectListener(name, ip, port, { freebind: true, chainName: `endpoint/${ip}` });
  if (!hasCertificates(view)) return listener;
  return { ...listener, listener_filters: [tlsInspector], filter_chains: terminatorChains(name, ip, view) };
}

/**
 * With certificates, two chains told apart by the ClientHello (tls_inspector): mTLS, and plaintext for
 * permissive and disabled Services. Each has its own connection manager and routes, and a Service is
 * routed only on the chains its mode admits, so a plaintext connection never reaches a strict Service.
 * The chains are the same whatever the Services: changing a mode rewrites routes, never the listener.
 */
function terminatorChains(name: string, ip: string, view: NodeView) {
  return [
    {
      name: `endpoint/${ip}/mtls`,
      filter_chain_match: { transport_protocol: 'tls' },
      transport_socket: downstreamTransportSocket(view),
      filters: [discoveredFilter(mtlsName(name), typeOf.hcm)],
    },
    {
      name: `endpoint/${ip}`,
      filter_chain_match: { transport_protocol: 'raw_buffer' },
      filters: [discoveredFilter(name, typeOf.hcm)],
    },
  ];
}

const mtlsName = (name: string) => `${name}/mtls`;

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
        resources.cluster.push({ name, owner: t, piece: 'gw-cluster', object: () => balancedBackendCluster(name, t) });
        resources.endpoint.push({
          name,
          owner: t,
          piece: 'gw-endpoints',
          object: () => balancedBackendEndpoints(name, t),
        });
        gatewayHosts.push(memo.piece(t, 'gw-vhost', () => terminatingVirtualHost(t, name)));
        gatewayTunnels.push(t);
        // Originators dial the Service's endpoint IPs; the terminator there balances over all of them.
        for (const ip of addressesOf(t)) if (serves(ip)) gatewayIps.add(ip);
        continue;
      }
      const ips = addressesOf(t).filter(serves);
      for (const ip of ips) {
        const name = backendClusterName(t, ip);
        const hosts = () => t.endpoints.filter((e) => e.address === ip);
        const cluster = () => staticCluster(name, hosts(), bufferLimit(t.settings));
        resources.cluster.push({ name, owner: t, piece: `cluster|${ip}`, object: cluster });
        const host = memo.piece(t, `vhost|${ip}`, () => terminatingVirtualHost(t, name));
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
    // A node with certificates has an mTLS chain too, names the peer in its logs and enforces allowed
    // identities (RBAC per route); without, a Service with an allowlist is not routed at all.
    const certs = hasCertificates(view);
    const chains = certs ? (['plaintext', 'mtls'] as const) : (['plaintext'] as const);
    const fields = certs ? { ...terminateLogFields, ...peerLogFields } : terminateLogFields;
    for (const ip of ips) {
      const listenerName = terminateRouteName(port, ip);
      const allHosts = [...(sidecarHosts.get(ip) ?? []), ...gatewayHosts];
      const allTunnels = [...(sidecarTunnels.get(ip) ?? []), ...gatewayTunnels];
      for (const chain of chains) {
        const name = chain === 'mtls' ? mtlsName(listenerName) : listenerName;
        const admitted = (t: Tunnel) => routedOn(t, chain) && (certs || !t.settings.allowedIdentities);
        const hosts = allHosts.filter((_, i) => admitted(allTunnels[i]!));
        resources.route.push({ name, object: { name, virtual_hosts: hosts }, key: hosts.map(contentKey).join(',') });
        // Only the Services routed on this chain log here; their logs change no listener (ECDS).
        // Keyed by the logs' content, as routes are: a moved endpoint makes new tunnel objects whose logs
        // read the same, and the connection managers of the addresses it kept are not encoded again.
        const logs = allTunnels
          .filter((t) => admitted(t) && t.settings.accessLog)
          .map((t) => memo.piece(t, certs ? 'log|peer' : 'log', () => sharedServiceLog(t, fields)));
        const prefix = chain === 'mtls' ? statPrefix('terminate', port, 'mtls') : statPrefix('terminate', port);
        resources.extension.push({
          name,
          object: () => connectManager(name, prefix, [...nodeLogs(view, fields), ...logs], certs ? [rbacFilter] : []),
          key: `${viewKey(view)}|${logs.map(contentKey).join(',')}`,
        });
      }
      // The same bytes for as long as the IP has a Service: never modified, only added and removed.
      resources.listener.push({
        name: listenerName,
        key: `endpoint-listener${tlsPiece(view)}`,
        object: () => endpointListener(listenerName, ip, port, view),
      });
    }
  }
  return { resources };
}
