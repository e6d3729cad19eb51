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
  /** Observers for metrics; the server itself only logs. */
  observe?: Partial<StreamEvents> & { connected?(stream: AdsStream): void; disconnected?(stream: AdsStream): void };
}

export class XdsServer {
  readonly streams = new Set<AdsStream>();
  private server?: grpc.Server;
  boundPort = 0;

  constructor(private readonly options: XdsServerOptions) {}

  async start(): Promise<number> {
    const server = new grpc.Server({
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 4 * 1024 * 1024,
      'grpc.max_connection_age_ms': this.options.maxConnectionAgeMs ?? 30 * 60_000,
      'grpc.max_connection_age_grace_ms': this.options.maxConnectionAgeGraceMs ?? 60_000,
    });
    server.addService(adsServiceDefinition(), { StreamAggregatedResources: (call: grpc.ServerDuplexStream<DecodedRequest, Buffer>) => this.handle(call) });
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

  private handle(call: grpc.ServerDuplexStream<DecodedRequest, Buffer>): void {
    const log = this.options.logger;
    let stream: AdsStream | undefined;
    this.calls.add(call);
    const events: StreamEvents = {
      sent: (s, kind, version, nonce, count) => {
        log.debug({ node: s.node.id, type: kind, version, nonce, resources: count }, 'sent');
        this.options.observe?.sent?.(s, kind, version, nonce, count);
      },
      decided: (s, kind, decision, version, nonce) => logDecision(log, s, kind, decision, version, nonce, this.options.observe?.decided),
    };
    call.on('data', (request: DecodedRequest & { node?: Parameters<typeof parseNode>[0] }) => {
      try {
        if (!stream) {
          const node = parseNode(request.node);
          const watch = this.options.cache.watch(node.view, () => stream?.push());
          stream = new AdsStream(node, watch, { write: (b) => call.write(b) }, events, this.options.controlPlaneId ?? 'tunnel-shim');
          this.streams.add(stream);
          log.info({ node: node.id, role: node.view.role, listenAddress: node.view.listenAddress }, 'node connected');
          this.options.observe?.connected?.(stream);
        }
        const decision = stream.onRequest(request);
        if (!decision) log.warn({ node: stream.node.id, typeUrl: request.type_url }, 'request for a type this server does not serve; ignored');
      } catch (err) {
        const code = err instanceof NodeError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL;
        log.warn({ err: (err as Error).message }, 'closing stream');
        closeWithStatus(call, code, (err as Error).message);
      }
    });
    call.on('drain', () => stream?.onDrain());
    const end = () => {
      if (!this.calls.delete(call)) return;
      if (stream) {
        stream.close();
        this.streams.delete(stream);
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

/** Ends a stream with a gRPC status the client sees (grpc-js turns an 'error' event into the status). */
function closeWithStatus(call: grpc.ServerDuplexStream<any, any>, code: grpc.status, message: string) {
  call.emit('error', Object.assign(new Error(message), { code, details: message }));
}

function logDecision(log: Logger, s: AdsStream, kind: ResourceKind, decision: Decision, version: string, nonce: string, observe?: StreamEvents['decided']) {
  const fields = { node: s.node.id, type: kind, version, nonce };
  if (decision.kind === 'nack') log.warn({ ...fields, error: decision.message }, 'NACK: config rejected by node; not resending it');
  else log.debug(fields, decision.kind);
  observe?.(s, kind, decision, version, nonce);
}

