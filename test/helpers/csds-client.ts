// A real gRPC client of envoy.service.status.v3.ClientStatusDiscoveryService (unary and streaming).
import * as grpc from '@grpc/grpc-js';
import type { Connect } from './ads-client.js';
import { decodeAny } from '../../src/envoy/encode.js';
import { csdsServiceDefinition } from '../../src/xds/csds.js';

export interface GenericXdsConfig {
  type_url: string;
  name: string;
  version_info?: string;
  config_status?: string;
  client_status?: string;
  xds_config?: { type_url: string; value: Uint8Array };
  error_state?: { details?: string; version_info?: string };
  /** The decoded xds_config, for assertions. */
  resource?: Record<string, any>;
}

export interface ClientConfig {
  node: { id: string; cluster?: string };
  generic_xds_configs: GenericXdsConfig[];
}

function decoded(response: { config?: ClientConfig[] }): ClientConfig[] {
  return (response.config ?? []).map((c) => ({
    ...c,
    generic_xds_configs: (c.generic_xds_configs ?? []).map((g) => ({
      ...g,
      resource: g.xds_config ? decodeAny(g.xds_config).object : undefined,
    })),
  }));
}

export class CsdsClient {
  private readonly client: any;

  constructor(address: string, connect: Connect = {}) {
    const Client = grpc.makeGenericClientConstructor(csdsServiceDefinition(), 'ClientStatusDiscoveryService');
    this.client = new Client(address, connect.credentials ?? grpc.credentials.createInsecure(), connect.options);
  }

  fetch(request: Record<string, unknown> = {}): Promise<ClientConfig[]> {
    return new Promise((resolve, reject) =>
      this.client.FetchClientStatus(
        request,
        { deadline: Date.now() + 5000 },
        (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(decoded(res))),
      ),
    );
  }

  /** Opens StreamClientStatus, sends each request in turn and collects one response per request. */
  async stream(requests: Record<string, unknown>[]): Promise<ClientConfig[][]> {
    const call = this.client.StreamClientStatus({ deadline: Date.now() + 5000 });
    const out: ClientConfig[][] = [];
    return new Promise((resolve, reject) => {
      call.on('data', (res: any) => {
        out.push(decoded(res));
        if (out.length === requests.length) call.end();
      });
      call.on('error', reject);
      call.on('end', () => resolve(out));
      for (const r of requests) call.write(r);
    });
  }

  close(): void {
    this.client.close();
  }
}

/** One node's resources by `type_url|name`. */
export function byResource(config: ClientConfig): Map<string, GenericXdsConfig> {
  return new Map(config.generic_xds_configs.map((g) => [`${g.type_url.split('.').pop()}|${g.name}`, g]));
}
