// Make-before-break across Envoys, as pure functions. An endpoint (a tunnel's address) is announced to
// originators and relays only once every connected terminator that serves that address holds the
// resources for it; a removed endpoint is withdrawn from originators first and leaves terminators only
// once every connected originator and relay holds the withdrawal. Each wait is bounded: past
// `timeoutMs` the step goes ahead anyway and says so. No I/O, no clocks: table-tested in
// test/unit/rollout.test.ts; rollout-stage.ts feeds it what the Envoys ACKed.
import type { Tunnel } from '../model/tunnel.js';
import { isAnyAddress } from '../envoy/node-view.js';
import { addressesOf } from '../translate/scope.js';

/** How long an endpoint waits for terminators, or a withdrawal for originators, before it goes ahead. */
export const defaultRolloutTimeoutMs = 5000;

/**
 * How long terminators keep a withdrawn endpoint after every originator holds the withdrawal. Envoy
 * ACKs a change once its main thread took it, before its workers do: a connection a worker opens just
 * then still goes to the old endpoint, and under load its CONNECT can arrive a few ms after the ACK.
 */
export const defaultWithdrawGraceMs = 500;

/** One endpoint waiting for Envoys. `revision`: the first model revision that showed the change. */
export interface Hold {
  tunnel: string;
  address: string;
  since: number;
  revision: number;
  /** A withdrawal: since when every originator holds it (its grace runs from here). */
  clearSince?: number;
}

/** A withdrawal also keeps the tunnel as originators last had it, so terminators can keep serving it. */
export interface Withdrawal extends Hold {
  last: Tunnel;
}

export interface RolloutState {
  /** Endpoint slots (`slotKey`) of the target that originators may see. */
  announced: ReadonlySet<string>;
  pending: ReadonlyMap<string, Hold>;
  /**
   * Slots gone from the target that originators still see because the tunnel's replacement endpoints
   * are not announced yet (make before break: a move never leaves a tunnel with no endpoint).
   */
  retiring: ReadonlyMap<string, Withdrawal>;
  withdrawing: ReadonlyMap<string, Withdrawal>;
  /** The target tunnels of the last step, by key, and as the list they came in. */
  target: ReadonlyMap<string, Tunnel>;
  list: readonly Tunnel[];
}

export const emptyRollout: RolloutState = {
  announced: new Set(),
  pending: new Map(),
  retiring: new Map(),
  withdrawing: new Map(),
  target: new Map(),
  list: [],
};

/** A connected Envoy as the rollout sees it: the newest revision it was seen holding (-1: none yet). */
export interface Peer {
  id: string;
  /** A terminator bound to this address serves only it; unbound (or any-address) serves every address. */
  address?: string;
  synced: number;
}

export interface RolloutInput {
  target: readonly Tunnel[];
  terminators: readonly Peer[];
  /** Connected originators and relays. */
  originators: readonly Peer[];
  now: number;
  timeoutMs: number;
  /** See defaultWithdrawGraceMs (default 0: a withdrawal ends when the last originator holds it). */
  withdrawGraceMs?: number;
  /** The revision the models derived from this step will have if they differ from the last ones. */
  revision: number;
}

/** A hold that ended in this step. */
export interface Settled {
  phase: 'announce' | 'withdraw';
  tunnel: string;
  address: string;
  heldMs: number;
  timedOut: boolean;
  /** When it timed out: the Envoys (node ids) it was still waiting for. */
  waitedFor?: string[];
}

export function slotKey(tunnel: string, address: string): string {
  return `${tunnel}|${address}`;
}

export function serves(peer: Peer, address: string): boolean {
  return isAnyAddress(peer.address) || peer.address === address;
}

/** Connected peers still behind a hold: the ones it is waiting for. */
export function waitingFor(hold: Hold, peers: readonly Peer[]): Peer[] {
  return peers.filter((p) => p.synced < hold.revision);
}

/**
 * One step: the new state and the holds that ended. Tunnels unchanged since the last step cost nothing,
 * and a step with the same target list (an ACK, the poll) looks only at the holds; when none moved, the
 * state is the very same object (the stage then derives nothing).
 */
export function stepRollout(state: RolloutState, input: RolloutInput): { state: RolloutState; settled: Settled[] } {
  const pending = new Map(state.pending);
  const retiring = new Map(state.retiring);
  const withdrawing = new Map(state.withdrawing);
  const settled: Settled[] = [];
  const { now, timeoutMs, revision } = input;
  const servingTerminators = (address: string) => input.terminators.filter((p) => serves(p, address));
  // Copied on the first write only: most steps change no announced endpoint.
  let announced = state.announced as Set<string>;
  const announce = (key: string) =>
    (announced === state.announced ? (announced = new Set(announced)) : announced).add(key);
  const unannounce = (key: string) => {
    if (!announced.has(key)) return false;
    if (announced === state.announced) announced = new Set(announced);
    return announced.delete(key);
  };
  const withdraw = (w: Withdrawal) => {
    // Nobody to wait for: gone at once.
    if (input.originators.length > 0) withdrawing.set(slotKey(w.tunnel, w.address), { ...w, since: now, revision });
  };

  let changed = input.target !== state.list;
  let target = state.target;
  if (changed) {
    const byKey = (target = new Map<string, Tunnel>());
    for (const t of input.target) {
      byKey.set(t.key, t);
      const before = state.target.get(t.key);
      if (before === t) continue;
      for (const address of addressesOf(t)) {
        const key = slotKey(t.key, address);
        if (announced.has(key) || pending.has(key)) continue;
        // Back before it left the terminators: they still hold it, so it may be shown again at once.
        const back = retiring.delete(key) || withdrawing.delete(key);
        if (back || servingTerminators(address).length === 0) announce(key);
        else pending.set(key, { tunnel: t.key, address, since: now, revision });
      }
      if (!before) continue;
      const kept = new Set(addressesOf(t));
      for (const address of addressesOf(before)) {
        const key = slotKey(t.key, address);
        if (kept.has(address)) continue;
        if (unannounce(key)) retiring.set(key, { tunnel: t.key, address, since: now, revision, last: before });
        else pending.delete(key);
      }
    }
    for (const [key, before] of state.target) {
      if (target.has(key)) continue;
      for (const address of addressesOf(before)) {
        const slot = slotKey(key, address);
        pending.delete(slot);
        if (unannounce(slot)) withdraw({ tunnel: key, address, since: now, revision, last: before });
      }
    }
  }

  // Every originator at or past a withdrawal's revision (the usual case) is known without a scan.
  let originatorsSynced = Infinity;
  for (const p of input.originators) if (p.synced < originatorsSynced) originatorsSynced = p.synced;
  /** `behind` is only listed when the hold timed out (names in the warning); `clear`: nobody is behind. */
  const ends = (phase: Settled['phase'], hold: Hold, clear: boolean, behind: () => Peer[]): Settled | undefined => {
    if (!clear && now - hold.since < timeoutMs) return undefined;
    const base = { phase, tunnel: hold.tunnel, address: hold.address, heldMs: now - hold.since };
    return clear ? { ...base, timedOut: false } : { ...base, timedOut: true, waitedFor: behind().map((p) => p.id) };
  };
  for (const [key, hold] of pending) {
    const behind = waitingFor(hold, servingTerminators(hold.address));
    const end = ends('announce', hold, behind.length === 0, () => behind);
    if (!end) continue;
    changed = true;
    pending.delete(key);
    announce(key);
    settled.push(end);
  }
  const stillPending = new Set([...pending.values()].map((h) => h.tunnel));
  for (const [key, r] of retiring) {
    const t = target.get(r.tunnel);
    const shown = t && addressesOf(t).some((a) => announced.has(slotKey(t.key, a)));
    if (t && stillPending.has(t.key) && !shown) continue;
    changed = true;
    retiring.delete(key);
    withdraw(r);
  }
  const grace = input.withdrawGraceMs ?? 0;
  for (const [key, hold] of withdrawing) {
    const clear = originatorsSynced >= hold.revision;
    if (clear && grace > 0) {
      const clearSince = hold.clearSince ?? now;
      if (hold.clearSince === undefined) {
        withdrawing.set(key, { ...hold, clearSince });
        changed = true;
      }
      if (now - clearSince < grace) continue;
    }
    const end = ends('withdraw', hold, clear, () => waitingFor(hold, input.originators));
    if (!end) continue;
    changed = true;
    withdrawing.delete(key);
    settled.push(end);
  }
  if (!changed) return { state, settled };
  return { state: { announced, pending, retiring, withdrawing, target, list: input.target }, settled };
}

/** What each side is served: originators and relays see announced endpoints; terminators also keep withdrawals. */
export interface Sides {
  originate: readonly Tunnel[];
  terminate: readonly Tunnel[];
}

/**
 * Per side, the tunnel last derived from each target tunnel with other endpoints, so that the same
 * (tunnel, endpoint set) stays one object from step to step and translation memos hold. One per
 * rollout stage; an entry goes with its target tunnel and is replaced when its endpoint set changes.
 */
export class EndpointVariants {
  private readonly sides = { originate: new WeakMap<Tunnel, Variant>(), terminate: new WeakMap<Tunnel, Variant>() };

  of(side: keyof Sides, t: Tunnel, endpoints: Tunnel['endpoints']): Tunnel {
    const sig = endpoints.map((e) => `${e.address}:${e.port}`).join(',');
    const known = this.sides[side].get(t);
    if (known?.sig === sig) return known.tunnel;
    const tunnel = { ...t, endpoints };
    this.sides[side].set(t, { sig, tunnel });
    return tunnel;
  }
}

interface Variant {
  sig: string;
  tunnel: Tunnel;
}

const byAddressThenPort = (a: { address: string; port: number }, b: { address: string; port: number }) =>
  a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port;

function byTunnel(...maps: ReadonlyMap<string, Withdrawal>[]): Map<string, Withdrawal[]> {
  const out = new Map<string, Withdrawal[]>();
  for (const map of maps) {
    for (const w of map.values()) {
      const list = out.get(w.tunnel);
      if (list) list.push(w);
      else out.set(w.tunnel, [w]);
    }
  }
  return out;
}

/** The endpoints originators were last given at the held addresses. */
const endpointsOf = (held: readonly Withdrawal[] | undefined) =>
  (held ?? []).flatMap((w) => w.last.endpoints.filter((e) => e.address === w.address));

/** The two sides' tunnel lists; with nothing on hold both are `target` itself. */
export function deriveSides(target: readonly Tunnel[], state: RolloutState, variants = new EndpointVariants()): Sides {
  if (state.pending.size === 0 && state.retiring.size === 0 && state.withdrawing.size === 0) {
    return { originate: target, terminate: target };
  }
  const shownHeld = byTunnel(state.retiring);
  const keptHeld = byTunnel(state.retiring, state.withdrawing);
  // Every endpoint of a tunnel without a hold is announced: only held tunnels are looked into.
  const held = new Set([...state.pending.values()].map((h) => h.tunnel));
  for (const key of keptHeld.keys()) held.add(key);
  const originate: Tunnel[] = [];
  const terminate: Tunnel[] = [];
  for (const t of target) {
    if (!held.has(t.key)) {
      originate.push(t);
      terminate.push(t);
      continue;
    }
    const announced = t.endpoints.filter((e) => state.announced.has(slotKey(t.key, e.address)));
    const shown = [...announced, ...endpointsOf(shownHeld.get(t.key))];
    originate.push(sameEndpoints(shown, t) ? t : variants.of('originate', t, shown.sort(byAddressThenPort)));
    const kept = keptHeld.get(t.key);
    keptHeld.delete(t.key);
    const all = kept && [...t.endpoints, ...endpointsOf(kept)].sort(byAddressThenPort);
    terminate.push(all ? variants.of('terminate', t, all) : t);
  }
  // Tunnels gone from the target whose endpoints originators may still use.
  for (const kept of keptHeld.values()) {
    terminate.push(variants.of('terminate', kept.at(-1)!.last, endpointsOf(kept).sort(byAddressThenPort)));
  }
  return { originate, terminate };
}

/** `shown` is exactly the tunnel's own endpoints (all announced, none retiring). */
function sameEndpoints(shown: Tunnel['endpoints'], t: Tunnel): boolean {
  return shown.length === t.endpoints.length && shown.every((e, i) => e === t.endpoints[i]);
}
