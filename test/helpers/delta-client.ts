// A real gRPC delta (incremental) ADS client that behaves like an Envoy: it names itself in the first
// request, subscribes and unsubscribes per type, reports what it has on reconnect, and ACKs or NACKs.
import * as grpc from '@grpc/grpc-js';
import type { Connect } from './ads-client.js';
import { decodeAny } from '../../src/envoy/encode.js';
import { TypeUrl, type ResourceKind } from '../../src/envoy/protos.js';
import { adsClientDefinition } from '../../src/xds/service.js';

export interface DeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  kind: ResourceKind;
  resources: { name: string; version: string; object: Record<string, any> }[];
  removed: string[];
}

const kindOf = new Map(Object.entries(TypeUrl).map(([k, v]) => [v, k as ResourceKind]));

export class DeltaClient {
  readonly responses: DeltaResponse[] = [];
  private readonly call: grpc.ClientDuplexStream<object, any>;
  private readonly client: grpc.Client;
  private first = true;
  error?: grpc.ServiceError;
  /** NACK every response of these types with this message, like an Envoy with a lasting problem. */
  readonly nacking = new Map<ResourceKind, string>();

  constructor(
    address: string,
    private readonly node: { id: string; metadata: Record<string, string> },
    connect: Connect = {},
  ) {
    const Client = grpc.makeGenericClientConstructor(adsClientDefinition(), 'AggregatedDiscoveryService');
    this.client = new Client(address, connect.credentials ?? grpc.credentials.createInsecure(), connect.options);
    this.call = (this.client as any).DeltaAggregatedResources();
    this.call.on('data', (r: any) => {
      this.responses.push({
        system_version_info: r.system_version_info,
        type_url: r.type_url,
        nonce: r.nonce,
        kind: kindOf.get(r.type_url)!,
        removed: r.removed_resources ?? [],
        resources: (r.resources ?? []).map((res: any) => ({
          name: res.name,
          version: res.version,
          object: decodeAny(res.resource).object,
        })),
      });
      const last = this.responses.at(-1)!;
      const nack = this.nacking.get(last.kind);
      if (nack !== undefined) this.send(last.kind, { nonce: last.nonce, error: nack });
    });
    this.call.on('error', (e: grpc.ServiceError) => (this.error = e));
  }

  send(
    kind: ResourceKind,
    opts: {
      subscribe?: string[];
      unsubscribe?: string[];
      initial?: Record<string, string>;
      nonce?: string;
      error?: string;
    } = {},
  ): void {
    const request: Record<string, unknown> = {
      type_url: TypeUrl[kind],
      resource_names_subscribe: opts.subscribe ?? [],
      resource_names_unsubscribe: opts.unsubscribe ?? [],
      initial_resource_versions: opts.initial ?? {},
      response_nonce: opts.nonce ?? '',
    };
    if (opts.error) request.error_detail = { code: 3, message: opts.error };
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

  ack(r: DeltaResponse, extra: { subscribe?: string[]; unsubscribe?: string[] } = {}): void {
    this.send(r.kind, { ...extra, nonce: r.nonce });
  }

  async next(kind: ResourceKind, timeoutMs = 5000): Promise<DeltaResponse> {
    return this.nextSince(kind, this.responses.length, timeoutMs);
  }

  async nextSince(kind: ResourceKind, index: number, timeoutMs = 5000): Promise<DeltaResponse> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.responses.slice(index).find((r) => r.kind === kind);
      if (found) return found;
      if (this.error) throw this.error;
      if (Date.now() > deadline) throw new Error(`no ${kind} delta response within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async quiet(ms = 300): Promise<DeltaResponse[]> {
    const start = this.responses.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.responses.slice(start);
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}
