// Which tunnels a model change touched. Tunnels whose content is unchanged keep the object identity
// they had in the previous model, so everything memoised on them (translated pieces, encoded bytes)
// carries over; the changed keys decide which node views must be rebuilt at all.
import type { Tunnel } from '../model/tunnel.js';
import type { NodeView } from '../translate/view.js';
import { isAnyAddress } from '../translate/view.js';

export interface TunnelChange {
  before?: Tunnel;
  after?: Tunnel;
}

export interface TunnelIndex {
  byKey: Map<string, { tunnel: Tunnel; fingerprint: string }>;
  ports: string;
}

/** Everything a tunnel holds except where it came from (a function inside), plus its file and line. */
function fingerprint(t: Tunnel): string {
  const { origin, ...content } = t;
  return JSON.stringify([content, origin?.file, origin?.line]);
}

export function reuseTunnels(previous: TunnelIndex | undefined, tunnels: readonly Tunnel[]): { tunnels: Tunnel[]; index: TunnelIndex; changes: TunnelChange[]; portsChanged: boolean } {
  const byKey = new Map<string, { tunnel: Tunnel; fingerprint: string }>();
  const changes: TunnelChange[] = [];
  const out: Tunnel[] = [];
  const ports = new Set<number>();
  for (const t of tunnels) {
    const fp = fingerprint(t);
    const old = previous?.byKey.get(t.key);
    const kept = old && old.fingerprint === fp ? old.tunnel : t;
    if (kept !== old?.tunnel) changes.push({ before: old?.tunnel, after: t });
    byKey.set(t.key, { tunnel: kept, fingerprint: fp });
    out.push(kept);
    ports.add(t.settings.tunnelPort);
  }
  for (const [key, old] of previous?.byKey ?? []) if (!byKey.has(key)) changes.push({ before: old.tunnel });
  const portList = [...ports].sort((a, b) => a - b).join(',');
  return { tunnels: out, index: { byKey, ports: portList }, changes, portsChanged: portList !== previous?.ports };
}

/** Whether a view's resources can depend on a tunnel at all (a terminator bound to one IP sees only its own). */
export function concerns(view: NodeView, t: Tunnel): boolean {
  if (view.role !== 'terminate' || isAnyAddress(view.listenAddress) || t.settings.placement === 'gateway') return true;
  // A Service's own access log rides every terminator's connection manager on its port; TCPRoute
  // backends and splits tie tunnels together: treat those as concerning every terminator.
  if (t.settings.accessLog || t.via || t.split) return true;
  return t.endpoints.some((e) => e.address === view.listenAddress);
}
