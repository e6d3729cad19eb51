// Which tunnels a model change touched. The model build hands back a tunnel whose content did not
// change as the very object it was before (model/identity.ts), so everything memoised on it
// (translated pieces, encoded bytes) carries over, and a change is simply a new object under a key;
// the changed tunnels decide which node views must be rebuilt at all.
import type { Tunnel } from '../model/tunnel.js';
export { concerns } from '../translate/scope.js';

export interface TunnelChange {
  before?: Tunnel;
  after?: Tunnel;
}

export interface TunnelIndex {
  byKey: Map<string, Tunnel>;
  ports: string;
}

export function changedTunnels(
  previous: TunnelIndex | undefined,
  tunnels: readonly Tunnel[],
): { index: TunnelIndex; changes: TunnelChange[]; portsChanged: boolean } {
  const byKey = new Map<string, Tunnel>();
  const changes: TunnelChange[] = [];
  const ports = new Set<number>();
  for (const t of tunnels) {
    const old = previous?.byKey.get(t.key);
    if (old !== t) changes.push({ before: old, after: t });
    byKey.set(t.key, t);
    ports.add(t.settings.tunnelPort);
  }
  for (const [key, old] of previous?.byKey ?? []) if (!byKey.has(key)) changes.push({ before: old });
  const portList = [...ports].sort((a, b) => a - b).join(',');
  return { index: { byKey, ports: portList }, changes, portsChanged: portList !== previous?.ports };
}
