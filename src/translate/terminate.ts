// Terminate: one listener per tunnel port with an HTTP connection manager that accepts CONNECT only
// for the authorities it was told about (no catch-all virtual host: never an open proxy).
//
// Sidecar placement: the originator already chose the endpoint by connecting to its IP, so each
// endpoint IP gets its own filter chain (matched on the connection's destination IP) whose routes go
// to the backend on that very IP: no second round of load balancing. Gateway placement: the route
// goes to a cluster of all the Service's endpoints, balanced here.
import type { Tunnel } from '../model/tunnel.js';
import type { ResourceObject } from '../envoy/encode.js';
import { isIP } from 'node:net';
import { adsConfigSource, duration, fileAccessLog, http2Keepalive, socketAddress, statPrefix, typeOf } from './common.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import { isAnyAddress, type NodeView } from './view.js';

export function terminateListenerName(port: number): string {
  return `terminate/${port}`;
}

export function terminateRouteName(port: number, ip?: string): string {
  return ip ? `terminate/${port}/${ip}` : `terminate/${port}`;
}

function backendClusterName(t: Tunnel, ip?: string): string {
  const base = `backend/${t.service.namespace}/${t.service.name}/${t.port}`;
  return ip ? `${base}/${ip}` : base;
}

function connectHttpManager(port: number, routeName: string, view: NodeView) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': typeOf.hcm,
      stat_prefix: statPrefix('terminate', port),
      codec_type: 'AUTO',
      rds: { route_config_name: routeName, config_source: adsConfigSource },
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': typeOf.router } }],
      upgrade_configs: [{ upgrade_type: 'CONNECT' }],
      http2_protocol_options: { allow_connect: true, connection_keepalive: http2Keepalive },
      // Tunnels are long-lived streams: the 5 minute default stream idle timeout would cut them.
      stream_idle_timeout: duration('0s'),
      ...(view.accessLog
        ? { access_log: [fileAccessLog(view.accessLog, { role: 'terminate', method: '%REQ(:METHOD)%', authority: '%REQ(:AUTHORITY)%', protocol: '%PROTOCOL%', response_code: '%RESPONSE_CODE%' })] }
        : {}),
    },
  };
}

function connectVirtualHost(t: Tunnel, cluster: string) {
  return {
    name: `${t.service.namespace}/${t.service.name}:${t.port}`,
    domains: [t.authority],
    routes: [
      {
        match: { connect_matcher: {} },
        // A route timeout (15 s by default) would cut a tunnel: tunnels end when either side closes.
        route: { cluster, upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: {} }], timeout: duration('0s') },
      },
    ],
  };
}

function staticCluster(name: string, hosts: { address: string; port: number }[]) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: duration('5s'),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: hosts.map((h) => ({ endpoint: { address: socketAddress(h.address, h.port) } })) }] },
  };
}

function edsCluster(name: string) {
  return { name, type: 'EDS', eds_cluster_config: { eds_config: adsConfigSource }, connect_timeout: duration('5s'), lb_policy: 'ROUND_ROBIN' };
}

function prefixRange(ip: string) {
  return { address_prefix: ip, prefix_len: isIP(ip) === 6 ? 128 : 32 };
}

export function translateTerminate(tunnels: readonly Tunnel[], view: NodeView): { resources: ResourceSet } {
  const resources = emptyResourceSet();
  const boundTo = isAnyAddress(view.listenAddress) ? undefined : view.listenAddress;
  const ports = [...new Set(tunnels.map((t) => t.settings.tunnelPort))].sort((a, b) => a - b);
  for (const port of ports) {
    const onPort = tunnels.filter((t) => t.settings.tunnelPort === port);
    const gatewayHosts: ResourceObject[] = [];
    const sidecarHosts = new Map<string, ResourceObject[]>();
    // One virtual host per authority: a Service that is also a TCPRoute backend is served once.
    const seen = new Set<string>();
    for (const t of onPort) {
      if (seen.has(t.authority)) continue;
      seen.add(t.authority);
      if (t.settings.placement === 'gateway') {
        const name = backendClusterName(t);
        resources.cluster.push({ name, object: edsCluster(name) });
        const lbEndpoints = t.endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, e.port) } }));
        resources.endpoint.push({ name, object: { cluster_name: name, endpoints: lbEndpoints.length ? [{ lb_endpoints: lbEndpoints }] : [] } });
        gatewayHosts.push(connectVirtualHost(t, name));
        continue;
      }
      const ips = [...new Set(t.endpoints.map((e) => e.address))].filter((ip) => !boundTo || ip === boundTo);
      for (const ip of ips) {
        const name = backendClusterName(t, ip);
        resources.cluster.push({ name, object: staticCluster(name, t.endpoints.filter((e) => e.address === ip)) });
        sidecarHosts.set(ip, [...(sidecarHosts.get(ip) ?? []), connectVirtualHost(t, name)]);
      }
    }
    const ips = [...sidecarHosts.keys()].sort();
    for (const ip of ips) {
      const name = terminateRouteName(port, ip);
      resources.route.push({ name, object: { name, virtual_hosts: [...(sidecarHosts.get(ip) ?? []), ...gatewayHosts] } });
    }
    resources.route.push({ name: terminateRouteName(port), object: { name: terminateRouteName(port), virtual_hosts: gatewayHosts } });
    resources.listener.push({
      name: terminateListenerName(port),
      object: {
        name: terminateListenerName(port),
        address: socketAddress(boundTo ?? '0.0.0.0', port),
        traffic_direction: 'INBOUND',
        filter_chains: ips.map((ip) => ({
          name: `endpoint/${ip}`,
          filter_chain_match: { prefix_ranges: [prefixRange(ip)] },
          filters: [connectHttpManager(port, terminateRouteName(port, ip), view)],
        })),
        default_filter_chain: { name: 'default', filters: [connectHttpManager(port, terminateRouteName(port), view)] },
      },
    });
  }
  return { resources };
}
