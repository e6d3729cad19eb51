// What every ADS stream shares, whatever its protocol variant: nonces, the push loop in
// make-before-break order, and backpressure that keeps at most one pending state per client.
import { randomBytes } from 'node:crypto';
import { pushOrder, type ResourceKind } from '../envoy/protos.js';
import type { ServedType, Watch } from '../cache/watch.js';
import type { NodeIdentity } from './node.js';

export interface ResponseSink {
  /** Returns false when the transport is full; `onDrain` is then called once it has room again. */
  write(response: Buffer): boolean;
  /**
   * False when the stream must not write now (its own bytes or all streams' together are over their
   * limits); `onDrain` is then called once it may. Asked before building a response.
   */
  hasRoom(): boolean;
}

/** A changed cluster or listener may need its endpoints, routes or filter configs sent again while it warms. */
export const childKinds: Partial<Record<ResourceKind, ResourceKind[]>> = {
  cluster: ['endpoint', 'secret'],
  listener: ['route', 'extension', 'secret'],
};

/**
 * NACKed content is sent again after about 1 s, 2 s, 4 s ... up to 5 min (±20% jitter, so a fleet that
 * rejected one change does not retry in step), until the type is ACKed: a NACK caused by something
 * transient (a port briefly taken) heals without an edit, and one that persists costs little.
 */
export const nackRetry = { firstMs: 1000, maxMs: 5 * 60_000 };

export function nackRetryDelayMs(nacks: number, random: () => number = Math.random): number {
  const base = Math.min(nackRetry.maxMs, nackRetry.firstMs * 2 ** Math.min(30, Math.max(0, nacks - 1)));
  return Math.min(nackRetry.maxMs, Math.round(base * (0.8 + 0.4 * random())));
}

/** What both stream kinds keep per type about NACKs in a row and the retry they scheduled. */
export interface NackRetryState {
  /** NACKs since the type was last ACKed. */
  nacks: number;
  /** When the rejected content is sent again (epoch ms), while a retry is scheduled. */
  retryAt?: number;
}

export abstract class BaseStream {
  abstract readonly mode: 'sotw' | 'delta';
  readonly connectedAt = new Date();
  /** Bytes and responses handed to the transport, and how often it pushed back: for tests and benchmarks. */
  readonly counters = { bytes: 0, responses: 0, blocked: 0 };
  private nonceCounter = 0;
  private readonly noncePrefix = randomBytes(4).toString('hex');
  protected blocked = false;
  protected dirty = false;

  constructor(
    readonly node: NodeIdentity,
    protected readonly watch: Watch,
    private readonly sink: ResponseSink,
    protected readonly controlPlaneId: string,
  ) {}

  /** Sends what changed for one type, if anything. */
  protected abstract pushChanges(kind: ResourceKind): void;

  /** Sends the type's current content again, as if the client held none of it (a NACK retry). */
  protected abstract resend(kind: ResourceKind): void;

  /**
   * Whether the Envoy holds the whole of its view's current content: every type looked at since it
   * last changed, everything sent ACKed, every resource asked for (synced.ts). Make-before-break waits on it.
   */
  abstract holdsView(): boolean;

  private readonly retries = new Map<ResourceKind, NodeJS.Timeout>();

  /** After a NACK: schedule sending the type again, later each time it is rejected in a row. */
  protected scheduleRetry(kind: ResourceKind, state: NackRetryState): void {
    this.cancelRetry(kind, state);
    state.nacks++;
    const delay = nackRetryDelayMs(state.nacks);
    state.retryAt = Date.now() + delay;
    const timer = setTimeout(() => {
      this.retries.delete(kind);
      state.retryAt = undefined;
      this.resend(kind);
    }, delay);
    this.retries.set(kind, timer.unref());
  }

  /** A response went out (or the type was ACKed): a scheduled retry is moot. */
  protected cancelRetry(kind: ResourceKind, state: NackRetryState): void {
    clearTimeout(this.retries.get(kind));
    this.retries.delete(kind);
    state.retryAt = undefined;
  }

  /** Called when the node's snapshot changed. */
  push(): void {
    for (const kind of pushOrder) {
      if (!this.mayWrite()) {
        this.dirty = true;
        return;
      }
      this.pushChanges(kind);
    }
  }

  /** Whether a response may be written now; if not, the stream waits for `onDrain`. */
  protected mayWrite(): boolean {
    if (this.blocked) return false;
    if (this.sink.hasRoom()) return true;
    this.blocked = true;
    this.counters.blocked++;
    return false;
  }

  get isBlocked(): boolean {
    return this.blocked;
  }

  /** The transport drained: send the latest state once, whatever happened meanwhile. */
  onDrain(): void {
    this.blocked = false;
    if (this.dirty) {
      this.dirty = false;
      this.push();
    }
  }

  close(): void {
    this.watch.cancel();
    for (const timer of this.retries.values()) clearTimeout(timer);
    this.retries.clear();
  }

  protected nextNonce(): string {
    return `${this.noncePrefix}-${++this.nonceCounter}`;
  }

  /**
   * Sends the response `build(nonce)` makes, shared with every stream that sends the same `key` for
   * the same content (undefined: not shareable). Returns the nonce it carries.
   *
   * Whole responses are shared by the streams of a view: the 1,000 originators of the benchmark get one
   * encoding of each response, not 1,000, and the shim writes the same bytes to each, encoded in their
   * gRPC frame, which each HTTP/2 stream is handed without a copy (xds/grpc-internals.ts). They share
   * the nonce too, which is fine: a nonce only has to tell one stream's responses apart. The cache keeps
   * them with the content they carry (ServedType.shared).
   */
  protected respond(
    ts: ServedType,
    key: string | undefined,
    lastNonce: string | undefined,
    build: (nonce: string) => Buffer,
  ): string {
    const shared =
      key === undefined
        ? undefined
        : ts.shared(`${this.mode}|${this.controlPlaneId}|${key}`, (id): SharedResponse => {
            const nonce = `${sharedNoncePrefix}-s${id}`;
            return { bytes: build(nonce), nonce };
          });
    // A nonce names a response within one stream; a shared response may only be sent once per stream.
    if (shared && shared.nonce !== lastNonce) {
      this.send(shared.bytes);
      return shared.nonce;
    }
    const nonce = this.nextNonce();
    this.send(build(nonce));
    return nonce;
  }

  protected send(response: Buffer): void {
    this.counters.bytes += response.length;
    this.counters.responses++;
    if (!this.sink.write(response)) {
      this.blocked = true;
      this.counters.blocked++;
    }
  }
}

/** Told apart from a stream's own nonces (`nextNonce`) and from another run's. */
const sharedNoncePrefix = randomBytes(4).toString('hex');

interface SharedResponse {
  bytes: Buffer;
  nonce: string;
}

/** `names` plus `more`: the same set when `more` adds nothing (a look's candidates, built per stream). */
export function withAlso(names: ReadonlySet<string>, more: Iterable<string>): ReadonlySet<string> {
  let out: Set<string> | undefined;
  for (const name of more) if (!names.has(name)) (out ??= new Set(names)).add(name);
  return out ?? names;
}
