// Bytes in flight to Envoys: per stream (one window plus the response that crossed it) and across all
// streams (a shared budget that paces a burst by the sockets instead of holding it in memory). A peer
// that stops reading keeps only its own bounded buffer: its bytes soon stop counting against the
// shared budget, streams that read go first when it is spent, and after a deadline it is cut.
import http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import type { ResponseSink } from './base-stream.js';

export interface WriteBudgetOptions {
  /** Bytes all streams together may have in flight (default 32 MiB). */
  bytes?: number;
  /** Bytes a peer leaves unread this long stop counting against the shared budget (default 250 ms). */
  stuckAfterMs?: number;
  /** A stream whose peer reads nothing of what it was sent for this long is closed (default 60 s). */
  cutAfterMs?: number;
}

/**
 * Bytes a stream may have handed to gRPC that the transport has not yet taken. grpc-js's own
 * backpressure counts messages (16 per stream), which for a stuck Envoy would mean 16 queued states;
 * counting bytes until each write's callback (the HTTP/2 layer took it) bounds it to one window
 * (64 KiB) plus the message that crossed it.
 */
const inFlightLimit = 64 * 1024;

/**
 * What the budget knows of a stream's peer: it has read everything it was sent (`reading`), nothing
 * has completed yet (`new`), or it left bytes unread past `stuckAfterMs` (`stalled`: those bytes no
 * longer count). A stream waits for room only with nothing in flight, so never while stalled.
 */
type Standing = 'reading' | 'new' | 'stalled';

/**
 * All streams together may have `limit` bytes in flight: a full state sent to 1,000 Envoys at once
 * would otherwise sit in memory 1,000 times over. A stream asks before it writes (hasRoom) and, when
 * the budget is spent, waits and sends its latest state when there is room, streams whose peers have
 * been reading first. Bytes a peer has not read for `stuckAfterMs` stop counting, so streams that do
 * not read cannot hold up those that do; one that reads nothing for `cutAfterMs` is closed.
 */
export class WriteBudget {
  inFlight = 0;
  readonly limit: number;
  readonly stuckAfterMs: number;
  readonly cutAfterMs: number;
  /** Streams waiting for room: those whose peers have been reading go first, then new ones. */
  private readonly waiting = { reading: new Set<BoundedSink>(), new: new Set<BoundedSink>() };
  private readonly pending = new Set<BoundedSink>();
  private sweeper?: NodeJS.Timeout;

  constructor(options: WriteBudgetOptions = {}) {
    this.limit = options.bytes ?? 32 * 1024 * 1024;
    this.stuckAfterMs = options.stuckAfterMs ?? 250;
    this.cutAfterMs = options.cutAfterMs ?? 60_000;
  }

  get full(): boolean {
    return this.inFlight >= this.limit;
  }

  take(n: number, from: BoundedSink): void {
    if (from.standing !== 'stalled') {
      this.inFlight += n;
      from.counted += n;
    }
    if (from.since === 0) from.since = performance.now();
    this.pending.add(from);
    this.sweeper ??= setInterval(() => this.sweep(), Math.max(25, Math.min(1000, this.stuckAfterMs / 4))).unref();
  }

  /** `from` finished writing `n` bytes (progress); `idle`: it has nothing else in flight. */
  give(n: number, from: BoundedSink, idle: boolean): void {
    const back = Math.min(n, from.counted);
    from.counted -= back;
    this.inFlight -= back;
    from.since = idle ? 0 : performance.now();
    if (idle) {
      this.pending.delete(from);
      from.standing = 'reading';
    }
    this.wake();
  }

  wait(sink: BoundedSink): void {
    (sink.standing === 'reading' ? this.waiting.reading : this.waiting.new).add(sink);
  }

  forget(sink: BoundedSink): void {
    this.waiting.reading.delete(sink);
    this.waiting.new.delete(sink);
    this.give(sink.counted, sink, true);
  }

  private wake(): void {
    for (const set of [this.waiting.reading, this.waiting.new]) {
      for (const sink of set) {
        if (this.full) return;
        set.delete(sink);
        sink.budgetFreed();
      }
    }
  }

  private sweep(): void {
    const now = performance.now();
    for (const p of this.pending) {
      const idleFor = now - p.since;
      if (idleFor >= this.cutAfterMs) {
        this.pending.delete(p);
        p.stuck(idleFor);
      } else if (idleFor >= this.stuckAfterMs && p.standing !== 'stalled') {
        this.inFlight -= p.counted;
        p.counted = 0;
        p.standing = 'stalled';
      }
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
    this.wake();
  }
}

/** One stream's side of the budget: what it has in flight, and whether it may write. */
export class BoundedSink implements ResponseSink {
  /** Bytes handed to gRPC that HTTP/2 has not taken yet. */
  inFlight = 0;
  /** Of those, the bytes counted against the shared budget (a stalled stream's stop counting). */
  counted = 0;
  /** When it last made progress while it had bytes in flight (0: nothing in flight). */
  since = 0;
  standing: Standing = 'new';
  private blocked = false;
  private closed = false;

  constructor(
    private readonly call: grpc.ServerDuplexStream<unknown, Buffer>,
    private readonly budget: WriteBudget,
    private readonly onDrain: () => void,
    /** The peer read nothing for `cutAfterMs`: the owner closes the stream. */
    readonly stuck: (idleForMs: number) => void,
  ) {}

  write(bytes: Buffer): boolean {
    const n = bytes.length;
    this.inFlight += n;
    this.budget.take(n, this);
    this.call.write(bytes, () => {
      if (this.closed) return;
      this.inFlight -= n;
      this.budget.give(n, this, this.inFlight === 0);
      this.budgetFreed();
    });
    if (this.inFlight > inFlightLimit || this.budget.full) this.blocked = true;
    return !this.blocked;
  }

  hasRoom(): boolean {
    if (this.blocked) return false;
    if (!this.budget.full) return true;
    this.blocked = true;
    this.budget.wait(this);
    return false;
  }

  /** Its own bytes or the shared budget may have room again. */
  budgetFreed(): void {
    if (!this.blocked || this.closed || this.inFlight > 0) return;
    if (this.budget.full) return this.budget.wait(this);
    this.blocked = false;
    this.onDrain();
  }

  /** The stream ended: what it had in flight no longer counts (grpc-js may never call back). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.forget(this);
    this.inFlight = 0;
  }
}

/**
 * Resets a stream's HTTP/2 stream (RST_STREAM CANCEL), dropping what it still buffers: a peer that
 * reads nothing never receives the status trailers, which wait behind the unread data. grpc-js keeps
 * the HTTP/2 stream in a private field; if an upgrade moves it, this does nothing and the stream
 * goes with its connection.
 */
export function resetStream(call: grpc.ServerDuplexStream<unknown, unknown>): void {
  const stream = (call as unknown as { call?: { stream?: http2.ServerHttp2Stream } }).call?.stream;
  if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
}
