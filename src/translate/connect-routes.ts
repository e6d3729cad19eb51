// Routing CONNECT by `:authority` on terminators and relays. A tunnel's virtual host accepts only its
// own authorities (model/domains.ts: never `*`, so never an open proxy), and the filter that picks its
// requests out of a shared access log matches the very same authorities.
import type { ResourceObject } from '../envoy/encode.js';
import { domainsOf } from '../model/domains.js';
import type { Tunnel } from '../model/tunnel.js';
import { duration } from './envoy-fields.js';
import { lbMetadataMatch } from './subsets.js';
import { picksEndpoint } from './tunnel-cluster.js';

/** The header an originator adds so a gateway terminator can hash on the app's source IP, not its own. */
export const sourceIpHeader = 'x-tunnel-shim-source-ip';

/** Matches the requests of one tunnel by `:authority`, so a per-Service log on a shared listener logs only its own. */
export function authorityFilter(t: Tunnel): ResourceObject {
  const filters = domainsOf(t).map((d) => ({
    header_filter: {
      header: { name: ':authority', string_match: d.startsWith('*') ? { suffix: d.slice(1) } : { exact: d } },
    },
  }));
  return filters.length === 1 ? filters[0]! : { or_filter: { filters } };
}

function virtualHost(t: Tunnel, route: ResourceObject): ResourceObject {
  return { name: `${t.service.namespace}/${t.service.name}:${t.port}`, domains: domainsOf(t), routes: [route] };
}

/**
 * A terminator's virtual host for a tunnel: only its own authorities, only its own way in (CONNECT, or
 * POST on exactly the configured path for h2-post), upgraded to TCP to `cluster`. Gateway placement
 * balances here, so its policies ride the route.
 */
export function terminatingVirtualHost(t: Tunnel, cluster: string): ResourceObject {
  const s = t.settings;
  const post = s.mode === 'h2-post';
  const gateway = s.placement === 'gateway';
  const match = post
    ? { path: s.postPath ?? '/', headers: [{ name: ':method', string_match: { exact: 'POST' } }] }
    : { connect_matcher: {} };
  const metadataMatch = gateway ? lbMetadataMatch(s) : undefined;
  return virtualHost(t, {
    match,
    route: {
      cluster,
      upgrade_configs: [{ upgrade_type: 'CONNECT', connect_config: post ? { allow_post: true } : {} }],
      // A route timeout (15 s by default) would cut a tunnel: tunnels end when either side closes.
      timeout: duration(0),
      ...(gateway && s.hashPolicy === 'source-ip'
        ? { hash_policy: [{ header: { header_name: sourceIpHeader } }] }
        : {}),
      ...(metadataMatch ? { metadata_match: metadataMatch } : {}),
    },
  });
}

/** With sidecar placement a relay picks the endpoint, so it applies the Service's affinity and subset. */
function endpointPolicy(t: Tunnel) {
  if (!picksEndpoint(t)) return {};
  const match = lbMetadataMatch(t.settings);
  return {
    ...(t.settings.hashPolicy === 'source-ip' ? { hash_policy: [{ connection_properties: { source_ip: true } }] } : {}),
    ...(match ? { metadata_match: match } : {}),
  };
}

/**
 * A relay's virtual host for a tunnel: its CONNECTs go on to `cluster` (the Service's tunnel cluster).
 * No connect_config: the CONNECT goes on to the terminator, which alone opens the TCP connection.
 */
export function forwardingVirtualHost(t: Tunnel, cluster: string): ResourceObject {
  return virtualHost(t, {
    match: { connect_matcher: {} },
    route: { cluster, timeout: duration(0), ...endpointPolicy(t) },
  });
}
