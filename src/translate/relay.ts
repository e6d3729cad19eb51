// Relay: an Envoy between callers and terminators that routes CONNECT by :authority to the next hop
// without terminating it (no connect_config: the CONNECT itself is forwarded, HTTP/1.1 or HTTP/2 in,
// the tunnel's protocol out). Services opt in with tunnel-shim.io/relay-port; the authorities are the
// same allowlist the terminators use (tunnel-shim.io/domains, exact or `*:1234`-style suffixes), so a
// relay never forwards what no terminator would accept. Anything else: plain HTTP goes to the node's
// configured HTTP backend or gets a 404 that says why; an unknown CONNECT gets a 404.
import type { Tunnel } from '../model/tunnel.js';
import { sharedLogs } from './access-log.js';
import { staticCluster } from './backend-cluster.js';
import { connectListener, connectManager } from './connect-manager.js';
import { forwardingVirtualHost } from './connect-routes.js';
import { statPrefix } from './envoy-fields.js';
import { emptyResourceSet, type ResourceSet } from './resources.js';
import { tunnelCluster, tunnelEndpoints } from './tunnel-cluster.js';
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

/** `certified`: the relay surely has a certificate (translate/tls.ts `nodeCertified`), for auto mTLS. */
export function translateRelay(
  tunnels: readonly Tunnel[],
  view: NodeView,
  certified = false,
): { resources: ResourceSet } {
  const resources = emptyResourceSet();
  // TCPRoute backends are reached through their parent's originator listener, never relayed on their own.
  const relayed = tunnels.filter((t) => t.settings.relayPort !== undefined && !t.via);
  const ports = [...new Set(relayed.map((t) => t.settings.relayPort!))].sort((a, b) => a - b);
  for (const port of ports) {
    const onPort = relayed.filter((t) => t.settings.relayPort === port);
    const hosts = onPort.map((t) => {
      const cluster = relayClusterName(t);
      resources.cluster.push({ name: cluster, object: tunnelCluster(t, cluster, view, certified) });
      resources.endpoint.push({ name: cluster, object: tunnelEndpoints(t, cluster) });
      return forwardingVirtualHost(t, cluster);
    });
    const name = relayName(port);
    resources.route.push({ name, object: { name, virtual_hosts: [...hosts, fallbackHost(view)] } });
    // Served over ECDS, as the terminator's are: a relayed Service's access log changes no listener.
    const logs = sharedLogs(view, onPort, relayLogFields);
    resources.extension.push({ name, object: connectManager(name, statPrefix('relay', port), logs) });
    const address = isAnyAddress(view.listenAddress) ? '0.0.0.0' : view.listenAddress!;
    resources.listener.push({ name, object: connectListener(name, address, port) });
  }
  if (ports.length && view.relayHttpBackend) {
    const i = view.relayHttpBackend.lastIndexOf(':');
    const address = view.relayHttpBackend.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(view.relayHttpBackend.slice(i + 1));
    resources.cluster.push({ name: relayHttpCluster, object: staticCluster(relayHttpCluster, [{ address, port }]) });
  }
  return { resources };
}
