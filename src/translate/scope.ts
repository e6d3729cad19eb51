// Which tunnels a view's resources can depend on. A terminator bound to one pod IP serves only the
// tunnels with an endpoint there (plus the few that reach every terminator), so it is translated from
// those alone (the same output as from all tunnels) and a change elsewhere does not rebuild it.
import type { Tunnel } from '../model/tunnel.js';
import { isAnyAddress, type NodeView } from './view.js';

/** Tunnels every terminator depends on, wherever their endpoints are. */
export function reachesEveryTerminator(t: Tunnel): boolean {
  // A Service's own access log rides every terminator's connection manager on its port; TCPRoute
  // backends and splits tie tunnels together; gateway terminators take any endpoint's traffic.
  return t.settings.placement === 'gateway' || Boolean(t.settings.accessLog || t.via || t.split);
}

function boundTerminator(view: NodeView): string | undefined {
  return view.role === 'terminate' && !isAnyAddress(view.listenAddress) ? view.listenAddress : undefined;
}

/** Whether a view's resources can depend on a tunnel at all. */
export function concerns(view: NodeView, t: Tunnel): boolean {
  const ip = boundTerminator(view);
  return ip === undefined || reachesEveryTerminator(t) || t.endpoints.some((e) => e.address === ip);
}

interface TerminatorIndex {
  everywhere: number[];
  byIp: Map<string, number[]>;
}

// Module-level, yet invisible: a pure function of a tunnel, which is never modified.
const addresses = new WeakMap<Tunnel, string[]>();

/** A tunnel's distinct endpoint IPs, worked out once per tunnel object (unchanged tunnels live on). */
export function addressesOf(t: Tunnel): string[] {
  let ips = addresses.get(t);
  if (!ips) {
    ips = [...new Set(t.endpoints.map((e) => e.address))];
    addresses.set(t, ips);
  }
  return ips;
}

/** Per tunnel list (one per model), shared by all its terminator views. */
// Module-level, yet invisible: a pure function of a model's tunnel list, which is never modified.
const indexes = new WeakMap<readonly Tunnel[], TerminatorIndex>();

function indexOf(tunnels: readonly Tunnel[]): TerminatorIndex {
  let index = indexes.get(tunnels);
  if (index) return index;
  index = { everywhere: [], byIp: new Map() };
  tunnels.forEach((t, i) => {
    if (reachesEveryTerminator(t)) return void index!.everywhere.push(i);
    for (const ip of addressesOf(t)) {
      const list = index!.byIp.get(ip);
      if (list) list.push(i);
      else index!.byIp.set(ip, [i]);
    }
  });
  indexes.set(tunnels, index);
  return index;
}

/** The tunnels `concerns` keeps, in model order, without looking at every tunnel. */
export function tunnelsConcerning(tunnels: readonly Tunnel[], view: NodeView): readonly Tunnel[] {
  const ip = boundTerminator(view);
  if (ip === undefined) return tunnels;
  const { everywhere, byIp } = indexOf(tunnels);
  const own = byIp.get(ip) ?? [];
  const out: Tunnel[] = [];
  let a = 0;
  let b = 0;
  while (a < everywhere.length || b < own.length) {
    const next = b >= own.length || (a < everywhere.length && everywhere[a]! < own[b]!) ? everywhere[a++]! : own[b++]!;
    out.push(tunnels[next]!);
  }
  return out;
}
