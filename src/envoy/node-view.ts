// What a node is, from its bootstrap node metadata: the only input besides the model.
export type Role = 'originate' | 'terminate' | 'relay';
export const roles: readonly Role[] = ['originate', 'terminate', 'relay'];

export const NodeMetadata = {
  role: 'tunnel-shim.io/role',
  listenAddress: 'tunnel-shim.io/listen-address',
  accessLog: 'tunnel-shim.io/access-log',
  relayHttpBackend: 'tunnel-shim.io/relay-http-backend',
  /** A claimed identity (`ns/sa` or a SPIFFE ID), trusted only with `serve --insecure-identities`. */
  identity: 'tunnel-shim.io/identity',
  /** `unix:PATH`: the node's certificates come from this SDS server (a SPIRE agent), not the shim. */
  sds: 'tunnel-shim.io/sds',
} as const;

/** Everything that decides which resources a node gets. Nodes with equal views share one snapshot. */
export interface NodeView {
  role: Role;
  /** Originate: listen here instead of each Service's clusterIP. Terminate and relay: bind here only. */
  listenAddress?: string;
  /** File the node's access logs go to. */
  accessLog?: string;
  /** Relay: `ip:port` of the HTTP server plain (non-CONNECT) requests go to; without it they get 404. */
  relayHttpBackend?: string;
  /** The node's SPIFFE ID (xds/identity.ts decides it). Without one a node is served no private key. */
  identity?: string;
  /** External SDS (`unix:PATH`): certificates are referenced by SPIRE's names; the shim serves none. */
  sds?: string;
  /** With `sds`: the names of the certificate and the bundle there, when not SPIRE's `default` and `ROOTCA`. */
  sdsNames?: [string, string];
}

export function viewKey(view: NodeView): string {
  const base = `${view.role}|${view.listenAddress ?? ''}|${view.accessLog ?? ''}|${view.relayHttpBackend ?? ''}`;
  return view.identity === undefined && view.sds === undefined
    ? base
    : `${base}|${view.identity ?? ''}|${view.sds ?? ''}|${view.sdsNames?.join(',') ?? ''}`;
}

export function isAnyAddress(address: string | undefined): boolean {
  return address === undefined || address === '0.0.0.0' || address === '::';
}
