// Per-Service authorization on terminators: the RBAC HTTP filter sits in every connection manager
// (with no rules of its own it allows everything), and a Service with tunnel-shim.io/allowed-identities
// puts its policy on its own route (RBACPerRoute), so changing it rewrites no listener or filter chain.
// A request from any other identity, or from a plaintext peer, gets 403 before a backend is chosen.
import type { ResourceObject } from '../envoy/encode.js';
import { spiffeMatcher } from '../model/mtls.js';
import type { Tunnel } from '../model/tunnel.js';

export const rbacFilterName = 'envoy.filters.http.rbac';
const rbacType = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const rbacPerRouteType = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute';

export const rbacFilter: ResourceObject = { name: rbacFilterName, typed_config: { '@type': rbacType } };

/** The route's `typed_per_filter_config` admitting only the Service's allowed identities, if it has a list. */
export function rbacPerRoute(t: Tunnel): ResourceObject | undefined {
  const ids = t.settings.allowedIdentities;
  if (!ids) return undefined;
  return {
    [rbacFilterName]: {
      '@type': rbacPerRouteType,
      rbac: {
        rules: {
          action: 'ALLOW',
          policies: {
            'allowed-identities': {
              permissions: [{ any: true }],
              principals: ids.map((id) => ({ authenticated: { principal_name: spiffeMatcher(id) } })),
            },
          },
        },
      },
    },
  };
}
