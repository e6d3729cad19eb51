// Which tunnels a model change touched. Tunnels whose content is unchanged keep the object identity
// they had in the previous model, so everything memoised on them (translated pieces, encoded bytes)
// carries over; the changed keys decide which node views must be rebuilt at all.
import type { Tunnel } from '../model/tunnel.js';
export { concerns } from '../translate/scope.js';

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
    const old = previous?.byKey.get(t.key);
    // The model build already hands back unchanged tunnels as the same objects: no need to look inside.
    const fp = old?.tunnel === t ? old.fingerprint : fingerprint(t);
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
