// Between the pipeline and the cache: the pipeline's model is the target; this stage hands each side
// of the cache what make-before-break allows it (rollout.ts), from what the connected Envoys hold, and
// looks again on every ACK, connect and disconnect, and on a short timer while anything is on hold.
import type { Logger } from 'pino';
import { clearIfAny } from '../clear.js';
import type { NodeView } from '../envoy/node-view.js';
import type { Model, Tunnel } from '../model/tunnel.js';
import type { SnapshotCache } from './cache.js';
import {
  defaultRolloutTimeoutMs,
  defaultWithdrawGraceMs,
  deriveSides,
  EndpointVariants,
  emptyRollout,
  stepRollout,
  waitingFor,
  serves,
  type Hold,
  type Peer,
  type RolloutState,
  type Settled,
  type Sides,
} from './rollout.js';

/** A connected Envoy, as the stage needs it (the server's streams are these). */
export interface ConnectedNode {
  readonly node: { readonly id: string; readonly view: NodeView };
  /** Whether it holds the whole of its view's current content (sent, ACKed, asked for). */
  holdsView(): boolean;
  /** Its view's content now (a new object whenever the content changes). */
  snapshot(): unknown;
}

/**
 * How often every stream is looked at while something is on hold; an ACK looks at its own stream at
 * once. The poll catches streams that caught up without answering anything (nothing to send them).
 */
const pollMs = 50;

export interface RolloutOptions {
  timeoutMs?: number;
  /** See defaultWithdrawGraceMs (rollout.ts). */
  withdrawGraceMs?: number;
  /** Called for every hold that ended (metrics). */
  onSettled?: (s: Settled) => void;
  /** Holds that timed out are logged here, at most every 10 s (a stuck Envoy times out every change). */
  logger?: Logger;
}

const warnEveryMs = 10_000;

/** One hold as `status` and /debug/nodes show it. */
export interface HoldView {
  phase: 'announce' | 'withdraw';
  tunnel: string;
  address: string;
  heldMs: number;
  waitingFor: string[];
}

export class RolloutStage {
  private state: RolloutState = emptyRollout;
  private target?: Model;
  private changedAt = Date.now();
  private sides?: Sides;
  /** Revision of the models the cache holds; a stream's entry: the newest one it was seen holding. */
  private revision = 0;
  private readonly synced = new WeakMap<ConnectedNode, number>();
  /** Tunnels with the endpoints a side may see, one object per endpoint set (rollout.ts). */
  private readonly variants = new EndpointVariants();
  private timer?: NodeJS.Timeout;
  private scheduled = false;
  /** Streams that answered since the last look. */
  private readonly answered = new Set<ConnectedNode>();
  /**
   * Whether the next look must step even if no answering stream caught up: a stream connected or
   * disconnected, or streams were found holding a new revision when it was made (carryForward).
   */
  private mustStep = false;
  private lastWarnAt = -Infinity;
  private timeoutsSinceWarn = 0;
  readonly timeoutMs: number;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly streams: () => Iterable<ConnectedNode>,
    private readonly options: RolloutOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? defaultRolloutTimeoutMs;
  }

  /** The pipeline's new target model. */
  setModel(model: Model, changedAt = Date.now()): void {
    this.target = model;
    this.changedAt = changedAt;
    this.evaluate();
  }

  diagnostics(): ReturnType<SnapshotCache['diagnostics']> {
    return this.cache.diagnostics();
  }

  /** An ACK (`stream`), a connect or a disconnect: look again soon (once per turn of the event loop). */
  poke(stream?: ConnectedNode): void {
    if (!this.holding) return;
    if (stream) this.answered.add(stream);
    else this.mustStep = true;
    this.lookSoon();
  }

  /** Looks once on the next turn of the event loop, however many pokes come before it. */
  private lookSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.evaluate(this.answered);
    });
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Endpoints on hold now, with the Envoys each waits for. */
  holds(now = Date.now()): HoldView[] {
    const { terminators, originators } = this.peers();
    const view = (phase: HoldView['phase'], h: Hold, peers: Peer[]): HoldView => ({
      phase,
      tunnel: h.tunnel,
      address: h.address,
      heldMs: now - h.since,
      waitingFor: waitingFor(h, peers).map((p) => p.id),
    });
    const serving = (h: Hold) => terminators.filter((p) => serves(p, h.address));
    return [
      ...[...this.state.pending.values()].map((h) => view('announce', h, serving(h))),
      ...[...this.state.withdrawing.values()].map((h) => view('withdraw', h, originators)),
    ];
  }

  /** The certificates of the last model handed to the cache. */
  private servedTls?: Model['tls'];

  private get holding(): boolean {
    return this.state.pending.size > 0 || this.state.withdrawing.size > 0;
  }

  private peers(streams: Iterable<ConnectedNode> = this.streams()): { terminators: Peer[]; originators: Peer[] } {
    const terminators: Peer[] = [];
    const originators: Peer[] = [];
    for (const stream of streams) {
      const view = stream.node.view;
      const peer = { id: stream.node.id, address: view.listenAddress, synced: this.synced.get(stream) ?? -1 };
      (view.role === 'terminate' ? terminators : originators).push(peer);
    }
    return { terminators, originators };
  }

  /**
   * `look`: the streams that answered (default: every stream). Only a stream newly seen holding the
   * current revision can end a hold early; time ends them on the poll.
   */
  private evaluate(look?: Set<ConnectedNode>): void {
    if (!this.target) return;
    // Every stream, listed once per step (1,100 of them; a setModels in between adds or drops none).
    let streams: ConnectedNode[] | undefined;
    const caughtUp = this.observe(look ?? (streams = [...this.streams()]));
    clearIfAny(this.answered);
    if (look && caughtUp === 0 && !this.mustStep) return;
    this.mustStep = false;
    streams ??= [...this.streams()];
    const { terminators, originators } = this.peers(streams);
    const previous = this.state;
    const { state, settled } = stepRollout(this.state, {
      target: this.target.tunnels,
      terminators,
      originators,
      now: Date.now(),
      timeoutMs: this.timeoutMs,
      withdrawGraceMs: this.options.withdrawGraceMs ?? defaultWithdrawGraceMs,
      revision: this.revision + 1,
    });
    this.state = state;
    // Certificates are not endpoints: a change of them goes out at once (Envoy rotates them in place).
    const tlsChanged = this.target.tls !== this.servedTls;
    // Most looks (an ACK, the poll) move no hold: the sides stay as they are.
    if (state === previous && !tlsChanged && this.sides) return this.afterStep(settled);
    const before = this.sides;
    const sides = (this.sides = deriveSides(this.target.tunnels, state, this.variants));
    if (
      !before ||
      tlsChanged ||
      !sameList(sides.originate, before.originate) ||
      !sameList(sides.terminate, before.terminate)
    ) {
      this.servedTls = this.target.tls;
      const held = this.holding ? this.contentOf(streams) : undefined;
      this.revision++;
      const target = this.target;
      const model = (tunnels: readonly Tunnel[]): Model =>
        tunnels === target.tunnels ? target : { ...target, tunnels: [...tunnels] };
      this.cache.setModels({ terminate: model(sides.terminate), originate: model(sides.originate) }, this.changedAt);
      // Streams the change did not reach hold the new revision already.
      if (held) this.carryForward(streams, held);
    }
    this.afterStep(settled);
  }

  private afterStep(settled: Settled[]): void {
    for (const s of settled) this.options.onSettled?.(s);
    this.warn(settled);
    this.schedulePoll();
  }

  private warn(settled: Settled[]): void {
    const timedOut = settled.filter((s) => s.timedOut);
    this.timeoutsSinceWarn += timedOut.length;
    const now = performance.now();
    if (timedOut.length === 0 || now - this.lastWarnAt < warnEveryMs) return;
    const { phase, tunnel, address, heldMs, waitedFor } = timedOut[0]!;
    const what = phase === 'announce' ? 'announced to originators before' : 'removed from terminators before';
    const example = `${tunnel} ${address} ${what} ${waitedFor?.join(', ')} ACKed`;
    this.options.logger?.warn(
      { timedOut: this.timeoutsSinceWarn, phase, tunnel, address, heldMs, waitedFor },
      `make-before-break: ${this.timeoutsSinceWarn} endpoint change(s) went ahead after ${this.timeoutMs} ms ` +
        `without every Envoy's ACK (e.g. ${example}); see /debug/nodes`,
    );
    this.lastWarnAt = now;
    this.timeoutsSinceWarn = 0;
  }

  /** Each stream's content, and whether it held it (at the current revision). */
  private contentOf(streams: readonly ConnectedNode[]): Map<ConnectedNode, { content: unknown; held: boolean }> {
    const out = new Map<ConnectedNode, { content: unknown; held: boolean }>();
    for (const stream of streams) {
      out.set(stream, { content: stream.snapshot(), held: this.synced.get(stream) === this.revision });
    }
    return out;
  }

  /**
   * After a new revision went to the cache: a stream whose content it left unchanged and that held the
   * previous revision holds this one too; only the others are asked (1,000 streams, one changed view).
   */
  private carryForward(
    streams: readonly ConnectedNode[],
    before: Map<ConnectedNode, { content: unknown; held: boolean }>,
  ): void {
    let caughtUp = 0;
    for (const stream of streams) {
      const was = before.get(stream);
      if ((was?.held && was.content === stream.snapshot()) || stream.holdsView()) {
        this.synced.set(stream, this.revision);
        caughtUp++;
      }
    }
    // They may be all a hold waits for, and may never answer (nothing is sent to them): step again.
    if (caughtUp > 0) {
      this.mustStep = true;
      this.lookSoon();
    }
  }

  /**
   * Records the current revision for each stream that holds its whole snapshot (only holds need it);
   * returns how many were newly seen holding it.
   */
  private observe(streams: Iterable<ConnectedNode>): number {
    if (!this.holding) return 0;
    let caughtUp = 0;
    // A stream seen holding this revision stays so: it is not asked again until the next one.
    for (const stream of streams) {
      if (this.synced.get(stream) !== this.revision && stream.holdsView()) {
        this.synced.set(stream, this.revision);
        caughtUp++;
      }
    }
    return caughtUp;
  }

  private schedulePoll(): void {
    if (!this.holding) {
      clearTimeout(this.timer);
      this.timer = undefined;
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.evaluate();
    }, pollMs);
  }
}

function sameList<T>(a: readonly T[], b: readonly T[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}
