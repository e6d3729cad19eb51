// The ADS server: owns gRPC streams and the protocol; asks the cache what to send.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ResourceKind } from '../envoy/protos.js';
import type { ConfigWatcher } from '../cache/watch.js';
import type { Decision } from './decide.js';
import { BoundedSink, resetStream, WriteBudget, type WriteBudgetOptions } from './budget.js';
import { NodeError, parseNode } from './node.js';
import type { NodeOptions } from './node.js';
import { isMalformed, RequestLimitError, SubscriptionTable } from './request.js';
import { csdsHandlers, csdsServiceDefinition } from './csds.js';
import { adsServiceDefinition } from './service.js';
import { SotwStream, type DecodedRequest, type StreamEvents } from './sotw-stream.js';
import { DeltaStream, type DecodedDeltaRequest, type DeltaStreamEvents } from './delta.js';
import { bindNode, guardCsds, PermissionDeniedError, type PeerAuthOptions } from './peer-identity.js';
import { xdsServerCredentials, type XdsTlsOptions } from './tls-credentials.js';
import type { DeltaDecision } from './delta-decide.js';
import { streamStatus } from './status.js';
import type { StreamStatus } from './stream-status.js';
import { errorMessage } from '../errors.js';
import { releaseReadBuffers, writeFramesAsIs, type FramingCounters } from './grpc-internals.js';

/** A connected Envoy, on either protocol variant. */
export type XdsStream = SotwStream | DeltaStream;
type AnyCall = grpc.ServerDuplexStream<unknown, Buffer>;
/** Ends one stream with a gRPC status (and logs why). */
type Fail = (code: grpc.status, message: string) => void;

export interface XdsServerOptions {
  address: string;
  cache: ConfigWatcher;
  logger: Logger;
  controlPlaneId?: string;
  /** TLS on the xDS port (mutual with a client CA); plaintext without. */
  tls?: XdsTlsOptions;
  /** With a client CA: each stream's certificate binds its node (peer-identity.ts), and guards CSDS. */
  peers?: PeerAuthOptions;
  /**
   * Connections older than this are asked to go away (GOAWAY) so Envoys spread over replicas after a
   * scale-up or rollout; grpc-js adds ±10% random jitter so they do not all reconnect at once.
   */
  maxConnectionAgeMs?: number;
  /** How long a connection past its age may finish its streams before it is closed. */
  maxConnectionAgeGraceMs?: number;
  /** Bytes all streams together may have in flight, when a stream's unread bytes stop counting, when it is cut. */
  writeBudget?: WriteBudgetOptions;
  /** How nodes' identities are decided (xds/identity.ts), and `serve --sds`. */
  identity?: NodeOptions;
  /** Observers for metrics; the server itself only logs. Both stream kinds report through the same hooks. */
  observe?: {
    sent?(stream: XdsStream, kind: ResourceKind, version: string, nonce: string, count: number): void;
    /** A request was decided (make-before-break looks again on every ACK). */
    decided?(stream: XdsStream, kind: ResourceKind, decision: Decision | DeltaDecision): void;
    connected?(stream: XdsStream): void;
    disconnected?(stream: XdsStream): void;
    /** A stream closed because its peer read nothing for `writeBudget.cutAfterMs`. */
    cut?(stream: XdsStream): void;
    /** A stream closed because a newer one claimed its node id. */
    replaced?(stream: XdsStream): void;
  };
}

export { WriteBudget };

export class XdsServer {
  /** State-of-the-world streams. */
  readonly streams = new Set<SotwStream>();
  /** Delta streams. */
  readonly deltaStreams = new Set<DeltaStream>();
  readonly budget: WriteBudget;
  /** SotW subscriptions held by this server's streams, each shared by the streams that sent the same names. */
  readonly subscriptions = new SubscriptionTable();
  private server?: grpc.Server;
  boundPort = 0;
  /** Response bytes written in the frame they were encoded in (no copy per stream), and bytes grpc-js copied. */
  readonly framing: FramingCounters = { asIs: 0, copied: 0 };
  /** False: grpc-js frames (copies) every response itself, as without the hook; for comparisons. */
  framesAsIs = true;

  constructor(private readonly options: XdsServerOptions) {
    this.budget = new WriteBudget(options.writeBudget);
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
    server.addService(adsServiceDefinition(this.subscriptions), {
      StreamAggregatedResources: (call: AnyCall) => this.handle(call, 'sotw'),
      DeltaAggregatedResources: (call: AnyCall) => this.handle(call, 'delta'),
    });
    const csds = csdsHandlers(
      () => this.statuses(),
      this.options.logger,
      (call) => this.track(call),
    );
    const { peers, logger } = this.options;
    const denied = (err: string) => logger.warn({ code: 'PERMISSION_DENIED', err }, 'CSDS request refused');
    server.addService(csdsServiceDefinition(), peers ? guardCsds(csds, peers, denied) : csds);
    const tls = await xdsServerCredentials(this.options.tls, logger);
    this.stopTls = tls.stop;
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(this.options.address, tls.credentials, (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    return this.boundPort;
  }

  /** Every connected node's status, whichever protocol it speaks: what CSDS, admin and metrics read. */
  statuses(): StreamStatus[] {
    const out: StreamStatus[] = [];
    for (const s of this.streams) out.push(streamStatus(s));
    for (const s of this.deltaStreams) out.push(streamStatus(s));
    return out;
  }

  /** Stops accepting streams and ends the open ones with UNAVAILABLE so clients reconnect elsewhere. */
  async stop(graceMs = 2000): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.stopTls();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
      for (const call of this.calls)
        closeWithStatus(call, grpc.status.UNAVAILABLE, 'control plane shutting down; reconnect');
    });
  }

  private stopTls = () => {};
  private readonly calls = new Set<grpc.ServerDuplexStream<unknown, unknown>>();

  /** Streams that `stop` must end itself (tryShutdown waits for open streams). */
  private track(call: grpc.ServerDuplexStream<unknown, unknown>): void {
    this.calls.add(call);
    const forget = () => this.calls.delete(call);
    call.on('close', forget);
    call.on('cancelled', forget);
  }

  private readonly events: StreamEvents = {
    sent: (s, kind, version, nonce, count) => {
      const log = this.options.logger;
      if (log.isLevelEnabled('debug'))
        log.debug({ node: s.node.id, type: kind, version, nonce, resources: count }, 'sent');
      this.options.observe?.sent?.(s, kind, version, nonce, count);
    },
    decided: (s, kind, decision, version, nonce) =>
      logDecision(this.options.logger, s.node.id, kind, decision, version, nonce, () =>
        this.options.observe?.decided?.(s, kind, decision),
      ),
  };

  private readonly deltaEvents: DeltaStreamEvents = {
    sent: (s, kind, version, nonce, count, removed) => {
      const log = this.options.logger;
      if (log.isLevelEnabled('debug'))
        log.debug({ node: s.node.id, type: kind, version, nonce, resources: count, removed }, 'sent (delta)');
      this.options.observe?.sent?.(s, kind, version, nonce, count);
    },
    decided: (s, kind, decision, nonce) =>
      logDecision(this.options.logger, s.node.id, kind, decision, '', nonce, () =>
        this.options.observe?.decided?.(s, kind, decision),
      ),
  };

  /** The one open stream per node id (the newest: see `handle`), and how to close it. */
  private readonly byNodeId = new Map<string, { stream: XdsStream; close: Fail }>();

  private handle(call: AnyCall, mode: 'sotw' | 'delta'): void {
    const log = this.options.logger;
    let stream: XdsStream | undefined;
    let sink: BoundedSink | undefined;
    // Nothing may be set up for a stream after it ended. grpc-js 1.14.7 does not deliver a message after
    // 'end', 'cancelled' or 'close' (see the write-then-cancel test); this guard does not rely on that.
    let ended = false;
    this.calls.add(call);
    if (this.framesAsIs && !writeFramesAsIs(call, this.framing)) this.warnCopying();
    const fail: Fail = (code, message) => {
      log.warn({ node: stream?.node.id, code: grpc.status[code], err: message }, 'closing stream');
      closeWithStatus(call, code, message);
    };
    call.on('data', (request: (DecodedRequest | DecodedDeltaRequest) & { node?: Parameters<typeof parseNode>[0] }) => {
      if (ended) return;
      if (isMalformed(request)) return fail(grpc.status.INVALID_ARGUMENT, request.malformed);
      try {
        if (!stream) {
          const peers = this.options.peers;
          const parsed = parseNode(request.node, this.options.identity);
          // With client certificates the certificate decides the identity (and may refuse the node).
          const node = peers ? bindNode(call, parsed, peers) : parsed;
          const watch = this.options.cache.watch(node.view, () => stream?.push());
          const cut = (ms: number) => this.cut(call, stream!, sink!, ms, fail);
          sink = new BoundedSink(call, this.budget, () => stream?.onDrain(), cut);
          const cp = this.options.controlPlaneId ?? 'tunnel-shim';
          stream =
            mode === 'delta'
              ? new DeltaStream(node, watch, sink, this.deltaEvents, cp)
              : new SotwStream(node, watch, sink, this.events, cp, this.subscriptions);
          this.claimNodeId(stream, call, fail);
          if (stream instanceof DeltaStream) this.deltaStreams.add(stream);
          else this.streams.add(stream);
          log.info(
            {
              node: node.id,
              role: node.view.role,
              listenAddress: node.view.listenAddress,
              identity: node.view.identity,
              mode,
            },
            'node connected',
          );
          this.options.observe?.connected?.(stream);
        }
        const decision = stream.onRequest(request as DecodedRequest & DecodedDeltaRequest);
        releaseReadBuffers(call);
        if (!decision)
          log.warn(
            { node: stream.node.id, typeUrl: request.type_url },
            'request for a type this server does not serve; ignored',
          );
      } catch (err) {
        fail(statusOf(err), errorMessage(err));
      }
    });
    const end = () => {
      if (ended) return;
      ended = true;
      this.calls.delete(call);
      sink?.close();
      if (stream) {
        stream.close();
        if (stream instanceof DeltaStream) this.deltaStreams.delete(stream);
        else this.streams.delete(stream);
        if (this.byNodeId.get(stream.node.id)?.stream === stream) this.byNodeId.delete(stream.node.id);
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

  /**
   * One stream per node id: a newer stream replaces an older one (closed with ABORTED), so status,
   * /debug/nodes, CSDS and metrics show each node once. An Envoy that reconnects before its old
   * stream was noticed as gone takes its place; two Envoys sharing an id take turns, and say so.
   */
  private claimNodeId(stream: XdsStream, call: AnyCall, fail: Fail): void {
    const id = stream.node.id;
    const previous = this.byNodeId.get(id);
    if (previous) {
      this.options.observe?.replaced?.(previous.stream);
      const why = `replaced by a newer stream with the same node id from ${call.getPeer()}; node ids must be unique`;
      previous.close(grpc.status.ABORTED, `node ${JSON.stringify(id)}: ${why}`);
    }
    this.byNodeId.set(id, { stream, close: fail });
  }

  private warnedCopying = false;

  private warnCopying(): void {
    if (this.warnedCopying) return;
    this.warnedCopying = true;
    this.options.logger.warn('grpc-js internals moved: each stream copies every response (grpc-internals.ts)');
  }

  /** The peer read nothing for the deadline: close with a status that says why, then reset the stream. */
  private cut(call: AnyCall, stream: XdsStream, sink: BoundedSink, idleForMs: number, fail: Fail): void {
    this.options.observe?.cut?.(stream);
    const unread = `${sink.inFlight} bytes of responses unread for ${Math.round(idleForMs / 1000)}s`;
    const limit = `the limit is ${this.budget.cutAfterMs / 1000}s: serve --stuck-stream-timeout`;
    const node = JSON.stringify(stream.node.id);
    fail(grpc.status.DEADLINE_EXCEEDED, `node ${node} left ${unread} (${limit}); closing the stream`);
    // The status waits behind the unread bytes: reset the stream if the peer does not take it soon.
    setTimeout(() => resetStream(call), 1000).unref();
  }
}

/** The status a stream ends with when its request could not be handled. */
function statusOf(err: unknown): grpc.status {
  if (err instanceof NodeError) return grpc.status.INVALID_ARGUMENT;
  if (err instanceof RequestLimitError) return grpc.status.RESOURCE_EXHAUSTED;
  if (err instanceof PermissionDeniedError) return grpc.status.PERMISSION_DENIED;
  return grpc.status.INTERNAL;
}

/** Ends a stream with a gRPC status the client sees (grpc-js turns an 'error' event into the status). */
function closeWithStatus(call: grpc.ServerDuplexStream<unknown, unknown>, code: grpc.status, message: string) {
  call.emit('error', Object.assign(new Error(message), { code, details: message }));
}

function logDecision(
  log: Logger,
  node: string,
  kind: ResourceKind,
  decision: Decision | DeltaDecision,
  version: string,
  nonce: string,
  observe?: () => void,
) {
  const fields = { node, type: kind, version, nonce };
  if (decision.kind === 'nack')
    log.warn({ ...fields, error: decision.message }, 'NACK: config rejected by node; not resending it');
  else if (log.isLevelEnabled('debug')) log.debug(fields, decision.kind);
  observe?.();
}
