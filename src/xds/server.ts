// The ADS server: owns gRPC streams and the protocol; asks the cache what to send.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ResourceKind } from '../envoy/protos.js';
import type { SnapshotCache } from './cache.js';
import type { Decision } from './decide.js';
import { NodeError, parseNode } from './node.js';
import { csdsHandlers, csdsServiceDefinition } from './csds.js';
import { adsServiceDefinition } from './service.js';
import { AdsStream, type DecodedRequest, type StreamEvents } from './stream.js';
import { DeltaStream, type DecodedDeltaRequest, type DeltaStreamEvents } from './delta.js';
import type { DeltaDecision } from './delta-decide.js';

/** A connected Envoy, on either protocol variant. */
export type XdsStream = AdsStream | DeltaStream;
type AnyCall = grpc.ServerDuplexStream<any, Buffer>;

export interface XdsServerOptions {
  address: string;
  cache: SnapshotCache;
  logger: Logger;
  controlPlaneId?: string;
  /**
   * Connections older than this are asked to go away (GOAWAY) so Envoys spread over replicas after a
   * scale-up or rollout; grpc-js adds ±10% random jitter so they do not all reconnect at once.
   */
  maxConnectionAgeMs?: number;
  /** How long a connection past its age may finish its streams before it is closed. */
  maxConnectionAgeGraceMs?: number;
  /** Bytes all streams together may have in flight, and when a stream's unread bytes stop counting. */
  writeBudget?: { bytes?: number; stuckAfterMs?: number };
  /** Observers for metrics; the server itself only logs. */
  observe?: Partial<StreamEvents> & {
    deltaSent?: DeltaStreamEvents['sent'];
    /** A delta request was decided (make-before-break looks again on every ACK). */
    deltaDecided?: DeltaStreamEvents['decided'];
    connected?(stream: XdsStream): void;
    disconnected?(stream: XdsStream): void;
  };
}

export class XdsServer {
  /** State-of-the-world streams (CSDS, metrics and status read these). */
  readonly streams = new Set<AdsStream>();
  /** Delta streams: shown in /debug/nodes; not yet in CSDS or the per-stream metrics. */
  readonly deltaStreams = new Set<DeltaStream>();
  readonly budget: WriteBudget;
  private server?: grpc.Server;
  boundPort = 0;

  constructor(private readonly options: XdsServerOptions) {
    this.budget = new WriteBudget(options.writeBudget?.bytes, options.writeBudget?.stuckAfterMs);
  }

  async start(): Promise<number> {
    const server = new grpc.Server({
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      'grpc.max_connection_age_ms': this.options.maxConnectionAgeMs ?? 30 * 60_000,
      'grpc.max_connection_age_grace_ms': this.options.maxConnectionAgeGraceMs ?? 60_000,
      // Per-connection and per-call trackers that only a channelz client would read: ~2 KB per Envoy.
      'grpc.enable_channelz': 0,
    });
    server.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: AnyCall) => this.handle(call, 'sotw'),
      DeltaAggregatedResources: (call: AnyCall) => this.handle(call, 'delta'),
    });
    server.addService(csdsServiceDefinition(), csdsHandlers(() => this.streams, this.options.logger, (call) => this.track(call)));
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.options.address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    return this.boundPort;
  }

  /** Stops accepting streams and ends the open ones with UNAVAILABLE so clients reconnect elsewhere. */
  async stop(graceMs = 2000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const call of this.calls) closeWithStatus(call, grpc.status.UNAVAILABLE, 'control plane shutting down; reconnect');
    });
  }

  private readonly calls = new Set<grpc.ServerDuplexStream<any, any>>();

  /** Streams that `stop` must end itself (tryShutdown waits for open streams). */
  private track(call: grpc.ServerDuplexStream<any, any>): void {
    this.calls.add(call);
    const forget = () => this.calls.delete(call);
    call.on('close', forget);
    call.on('cancelled', forget);
  }

  private readonly events: StreamEvents = {
    sent: (s, kind, version, nonce, count) => {
      this.options.logger.debug({ node: s.node.id, type: kind, version, nonce, resources: count }, 'sent');
      this.options.observe?.sent?.(s, kind, version, nonce, count);
    },
    decided: (s, kind, decision, version, nonce) => logDecision(this.options.logger, s.node.id, kind, decision, version, nonce, () => this.options.observe?.decided?.(s, kind, decision, version, nonce)),
  };

  private readonly deltaEvents: DeltaStreamEvents = {
    sent: (s, kind, version, nonce, count, removed) => {
      this.options.logger.debug({ node: s.node.id, type: kind, version, nonce, resources: count, removed }, 'sent (delta)');
      this.options.observe?.deltaSent?.(s, kind, version, nonce, count, removed);
    },
    decided: (s, kind, decision, nonce) => logDecision(this.options.logger, s.node.id, kind, decision, '', nonce, () => this.options.observe?.deltaDecided?.(s, kind, decision, nonce)),
  };

  private handle(call: AnyCall, mode: 'sotw' | 'delta'): void {
    const log = this.options.logger;
    let stream: XdsStream | undefined;
    let sink: ReturnType<typeof boundedSink> | undefined;
    this.calls.add(call);
    call.on('data', (request: (DecodedRequest | DecodedDeltaRequest) & { node?: Parameters<typeof parseNode>[0] }) => {
      try {
        if (!stream) {
          const node = parseNode(request.node);
          const watch = this.options.cache.watch(node.view, () => stream?.push());
          sink = boundedSink(call, this.budget, () => stream?.onDrain());
          const cp = this.options.controlPlaneId ?? 'tunnel-shim';
          stream = mode === 'delta' ? new DeltaStream(node, watch, sink, this.deltaEvents, cp) : new AdsStream(node, watch, sink, this.events, cp);
          if (stream instanceof DeltaStream) this.deltaStreams.add(stream);
          else this.streams.add(stream);
          log.info({ node: node.id, role: node.view.role, listenAddress: node.view.listenAddress, mode }, 'node connected');
          this.options.observe?.connected?.(stream);
        }
        const decision = stream.onRequest(request as DecodedRequest & DecodedDeltaRequest);
        releaseReadBuffers(call);
        if (!decision) log.warn({ node: stream.node.id, typeUrl: request.type_url }, 'request for a type this server does not serve; ignored');
      } catch (err) {
        const code = err instanceof NodeError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
        log.warn({ err: (err as Error).message }, 'closing stream');
        closeWithStatus(call, code, (err as Error).message);
      }
    });
    const end = () => {
      if (!this.calls.delete(call)) return;
      sink?.close();
      if (stream) {
        stream.close();
        if (stream instanceof DeltaStream) this.deltaStreams.delete(stream);
        else this.streams.delete(stream);
        log.info({ node: stream.node.id }, 'node disconnected');
        this.options.observe?.disconnected?.(stream);
      }
      call.end();
    };
    call.on('end', end);
    call.on('error', end);
    call.on('cancelled', end);
    call.on('close', end);
  }
}

/**
 * Bytes a stream may have handed to gRPC that the transport has not yet taken. grpc-js's own
 * backpressure counts messages (16 per stream), which for a stuck Envoy would mean 16 queued states;
 * counting bytes until each write's callback (the HTTP/2 layer took it) bounds it to one window
 * (64 KiB) plus the message that crossed it.
 */
const inFlightLimit = 64 * 1024;

/**
 * All streams together may have this many bytes in flight: a full state sent to 1,000 Envoys at once
 * would otherwise sit in memory 1,000 times over. A stream asks before it writes (hasRoom) and, when
 * the budget is spent, waits (FIFO) and sends its latest state when there is room; the sockets, not
 * memory, set the pace. Bytes a stuck Envoy has not read for `stuckAfterMs` stop counting, so a few
 * dead peers cannot starve everyone else (each still holds at most one response: its own limit).
 */
export class WriteBudget {
  inFlight = 0;
  private readonly waiting = new Set<() => void>();
  private readonly pending = new Set<PendingBytes>();
  private sweeper?: NodeJS.Timeout;
  constructor(
    readonly limit = 32 * 1024 * 1024,
    readonly stuckAfterMs = 10_000,
  ) {}
  get full(): boolean {
    return this.inFlight >= this.limit;
  }
  take(n: number, from: PendingBytes): void {
    this.inFlight += n;
    from.counted += n;
    if (from.since === 0) from.since = performance.now();
    this.pending.add(from);
    this.sweeper ??= setInterval(() => this.sweep(), Math.min(1000, this.stuckAfterMs)).unref();
  }
  /** `from` finished writing `n` bytes; `idle`: it has nothing else in flight. */
  give(n: number, from: PendingBytes, idle: boolean): void {
    const back = Math.min(n, from.counted);
    from.counted -= back;
    this.inFlight -= back;
    if (idle) {
      from.since = 0;
      this.pending.delete(from);
    }
    this.wake();
  }
  wait(wake: () => void): void {
    this.waiting.add(wake);
  }
  forget(wake: () => void, from: PendingBytes): void {
    this.waiting.delete(wake);
    this.give(from.counted, from, true);
  }
  private wake(): void {
    for (const wake of this.waiting) {
      if (this.full) break;
      this.waiting.delete(wake);
      wake();
    }
  }
  private sweep(): void {
    const now = performance.now();
    for (const p of this.pending) {
      if (now - p.since < this.stuckAfterMs) continue;
      this.inFlight -= p.counted;
      p.counted = 0;
      this.pending.delete(p);
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
    this.wake();
  }
}

/** One stream's bytes in flight as the budget sees them. */
interface PendingBytes {
  /** Bytes still counted against the budget (a stuck stream's stop counting). */
  counted: number;
  /** When its oldest unfinished write started (0: none). */
  since: number;
}

function boundedSink(call: AnyCall, budget: WriteBudget, onDrain: () => void) {
  let inFlight = 0;
  let blocked = false;
  let closed = false;
  const mine: PendingBytes = { counted: 0, since: 0 };
  const maybeDrain = () => {
    if (!blocked || closed || inFlight > 0) return;
    if (budget.full) return budget.wait(maybeDrain);
    blocked = false;
    onDrain();
  };
  return {
    write(bytes: Buffer): boolean {
      const n = bytes.length;
      inFlight += n;
      budget.take(n, mine);
      call.write(bytes, () => {
        if (closed) return;
        inFlight -= n;
        budget.give(n, mine, inFlight === 0);
        maybeDrain();
      });
      if (inFlight > inFlightLimit || budget.full) blocked = true;
      return !blocked;
    },
    hasRoom(): boolean {
      if (blocked) return false;
      if (!budget.full) return true;
      blocked = true;
      budget.wait(maybeDrain);
      return false;
    },
    /** The stream ended: what it had in flight no longer counts (grpc-js may never call back). */
    close(): void {
      if (closed) return;
      closed = true;
      budget.forget(maybeDrain, mine);
      inFlight = 0;
    },
  };
}

const noBytes = Buffer.alloc(1);

/**
 * grpc-js 1.14's StreamDecoder keeps the last request's chunks, slices of 64 KiB socket reads, until
 * the next request arrives: on an idle stream that holds tens of kilobytes, and at 10,000 Services a
 * 300 KB ACK per stream. Between messages the decoder overwrites both fields before reading them, so
 * dropping them then is safe. Private fields: if a grpc-js upgrade renames them this does nothing
 * (the idle-stream benchmark would show it).
 */
function releaseReadBuffers(call: AnyCall): void {
  const decoder = (call as unknown as { call?: { decoder?: { readState?: number; readPartialMessage?: unknown[]; readCompressFlag?: Buffer } } }).call?.decoder;
  if (decoder?.readState !== 0 || !Array.isArray(decoder.readPartialMessage)) return;
  decoder.readPartialMessage = [];
  decoder.readCompressFlag = noBytes;
}

/** Ends a stream with a gRPC status the client sees (grpc-js turns an 'error' event into the status). */
function closeWithStatus(call: grpc.ServerDuplexStream<any, any>, code: grpc.status, message: string) {
  call.emit('error', Object.assign(new Error(message), { code, details: message }));
}

function logDecision(log: Logger, node: string, kind: ResourceKind, decision: Decision | DeltaDecision, version: string, nonce: string, observe?: () => void) {
  const fields = { node, type: kind, version, nonce };
  if (decision.kind === 'nack') log.warn({ ...fields, error: decision.message }, 'NACK: config rejected by node; not resending it');
  else if (log.isLevelEnabled('debug')) log.debug(fields, decision.kind);
  observe?.();
}

