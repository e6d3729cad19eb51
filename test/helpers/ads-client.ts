// A real gRPC ADS client that behaves like an Envoy: it names itself in the first request, subscribes
// per type, and can ACK, NACK or send stale nonces on purpose.
import * as grpc from '@grpc/grpc-js';
import { decodeAny } from '../../src/envoy/encode.js';
import { TypeUrl, type ResourceKind } from '../../src/envoy/protos.js';
import { adsClientDefinition } from '../../src/xds/service.js';

/** How a test client connects: plaintext unless told (TLS tests pass credentials and their own channel options). */
export interface Connect {
  credentials?: grpc.ChannelCredentials;
  options?: grpc.ChannelOptions;
}

export interface Response {
  version_info: string;
  type_url: string;
  nonce: string;
  kind: ResourceKind;
  resources: { name: string; object: Record<string, any> }[];
}

const kindOf = new Map(Object.entries(TypeUrl).map(([k, v]) => [v, k as ResourceKind]));

export class AdsClient {
  readonly responses: Response[] = [];
  private readonly call: grpc.ClientDuplexStream<object, any>;
  private first = true;
  error?: grpc.ServiceError;
  private readonly client: grpc.Client;
  /** ACK every response as it arrives, like an Envoy that accepts everything. */
  autoAck = false;
  /** NACK every response of these types with this message, like an Envoy with a lasting problem. */
  readonly nacking = new Map<ResourceKind, string>();
  /** Skip decoding resources (only their count is kept): for clients that stand in for many Envoys. */
  lazy = false;
  private readonly subscribed = new Map<ResourceKind, string[]>();

  constructor(
    address: string,
    private readonly node: { id: string; metadata: Record<string, string> },
    connect: Connect = {},
  ) {
    const Client = grpc.makeGenericClientConstructor(adsClientDefinition(), 'AggregatedDiscoveryService');
    this.client = new Client(address, connect.credentials ?? grpc.credentials.createInsecure(), connect.options);
    this.call = (this.client as any).StreamAggregatedResources();
    this.call.on('data', (r: any) => {
      const kind = kindOf.get(r.type_url)!;
      this.responses.push({
        version_info: r.version_info,
        type_url: r.type_url,
        nonce: r.nonce,
        kind,
        resources: this.lazy
          ? (r.resources ?? []).map(() => ({ name: '', object: {} }))
          : (r.resources ?? []).map((any: { type_url: string; value: Uint8Array }) => {
              const { object } = decodeAny(any);
              return { name: String(object.name ?? object.cluster_name), object };
            }),
      });
      const last = this.responses.at(-1)!;
      const nack = this.nacking.get(last.kind);
      const names = this.subscribed.get(last.kind);
      const answer = { names, version: last.version_info, nonce: last.nonce };
      if (nack !== undefined) this.send(last.kind, { ...answer, error: nack });
      else if (this.autoAck) this.ack(last, names);
    });
    this.call.on('error', (e: grpc.ServiceError) => (this.error = e));
  }

  send(kind: ResourceKind, opts: { names?: string[]; version?: string; nonce?: string; error?: string } = {}): void {
    const request: Record<string, unknown> = {
      type_url: TypeUrl[kind],
      resource_names: opts.names ?? [],
      version_info: opts.version ?? '',
      response_nonce: opts.nonce ?? '',
    };
    if (opts.error) request.error_detail = { code: 3, message: opts.error };
    if (opts.names) this.subscribed.set(kind, opts.names);
    if (this.first) {
      request.node = {
        id: this.node.id,
        metadata: {
          fields: Object.fromEntries(Object.entries(this.node.metadata).map(([k, v]) => [k, { stringValue: v }])),
        },
      };
      this.first = false;
    }
    this.call.write(request);
  }

  ack(r: Response, names?: string[]): void {
    this.send(r.kind, { names, version: r.version_info, nonce: r.nonce });
  }

  /** Waits for the next response of a type arriving after `after` responses were seen. */
  async next(kind: ResourceKind, timeoutMs = 5000): Promise<Response> {
    const start = this.responses.length;
    return this.nextSince(kind, start, timeoutMs);
  }

  async nextSince(kind: ResourceKind, index: number, timeoutMs = 5000): Promise<Response> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.responses.slice(index).find((r) => r.kind === kind);
      if (found) return found;
      if (this.error) throw this.error;
      if (Date.now() > deadline) throw new Error(`no ${kind} response within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Asserts that nothing arrives for `ms`. */
  async quiet(ms = 300): Promise<Response[]> {
    const start = this.responses.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.responses.slice(start);
  }

  /** Stops reading responses (the transport fills up), as a stuck Envoy would. */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export const originateMeta = { 'tunnel-shim.io/role': 'originate', 'tunnel-shim.io/listen-address': '127.0.0.1' };
export const terminateMeta = { 'tunnel-shim.io/role': 'terminate' };
