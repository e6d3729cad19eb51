// What a node is, from its bootstrap node metadata: the only input besides the model.
export type Role = 'originate' | 'terminate' | 'relay';
export const roles: readonly Role[] = ['originate', 'terminate', 'relay'];

export const NodeMetadata = {
  role: 'tunnel-shim.io/role',
  listenAddress: 'tunnel-shim.io/listen-address',
  accessLog: 'tunnel-shim.io/access-log',
  relayHttpBackend: 'tunnel-shim.io/relay-http-backend',
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
}

export function viewKey(view: NodeView): string {
  return `${view.role}|${view.listenAddress ?? ''}|${view.accessLog ?? ''}|${view.relayHttpBackend ?? ''}`;
}

export function isAnyAddress(address: string | undefined): boolean {
  return address === undefined || address === '0.0.0.0' || address === '::';
}
