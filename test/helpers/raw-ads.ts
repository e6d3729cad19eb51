// A hostile ADS client on raw HTTP/2: it writes whatever bytes it is given as gRPC messages (valid
// requests, huge ones, garbage), can cancel at any moment, and reports the gRPC status it got.
import http2 from 'node:http2';
import zlib from 'node:zlib';
import { lookupType, TypeUrl, type ResourceKind } from '../../src/envoy/protos.js';

export type AdsMethod = 'StreamAggregatedResources' | 'DeltaAggregatedResources';

export interface GrpcStatus {
  code: number;
  message: string;
}

/** One HTTP/2 connection carrying any number of raw ADS streams. */
export class RawAdsConnection {
  readonly session: http2.ClientHttp2Session;

  constructor(address: string) {
    this.session = http2.connect(`http://${address}`, { settings: { initialWindowSize: 65535 } });
    this.session.on('error', () => {});
  }

  /** `read: false`: never read what the server sends, as a stuck Envoy does (flow control stops it). */
  open(method: AdsMethod = 'StreamAggregatedResources', read = true, gzip = false): RawAdsStream {
    return new RawAdsStream(this.session, method, read, gzip);
  }

  close(): void {
    this.session.destroy();
  }
}

export class RawAdsStream {
  readonly stream: http2.ClientHttp2Stream;
  /** Set once the server ended the stream (trailers), or the stream was reset. */
  status?: GrpcStatus;
  readonly closed: Promise<GrpcStatus>;
  responses = 0;
  private buffer = Buffer.alloc(0);

  /** `gzip`: messages are sent compressed (grpc-encoding: gzip), which the server inflates asynchronously. */
  constructor(
    session: http2.ClientHttp2Session,
    method: AdsMethod,
    read = true,
    private readonly gzip = false,
  ) {
    this.stream = session.request({
      ':method': 'POST',
      ':path': `/envoy.service.discovery.v3.AggregatedDiscoveryService/${method}`,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...(gzip ? { 'grpc-encoding': 'gzip' } : {}),
    });
    this.closed = new Promise((resolve) => {
      const done = (status: GrpcStatus) => {
        this.status ??= status;
        resolve(this.status);
      };
      this.stream.on('trailers', (t) =>
        done({ code: Number(t['grpc-status']), message: decodeURIComponent(String(t['grpc-message'] ?? '')) }),
      );
      this.stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined)
          done({ code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'] ?? '')) });
      });
      this.stream.on('close', () => done({ code: -1, message: `stream closed (RST code ${this.stream.rstCode})` }));
    });
    this.stream.on('error', () => {});
    if (read) this.stream.on('data', (chunk: Buffer) => this.count(chunk));
    else this.stream.pause();
  }

  /** The status the stream ended with, failing after `ms` (so a test that fails still cleans up). */
  closedWithin(ms: number): Promise<GrpcStatus> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`the stream did not end within ${ms} ms`)), ms)),
    );
    return Promise.race([this.closed, timeout]).finally(() => clearTimeout(timer));
  }

  /** Writes `body` as one gRPC message (length-prefixed, uncompressed). */
  write(message: Uint8Array): void {
    const body = this.gzip ? zlib.gzipSync(message) : message;
    const header = Buffer.alloc(5);
    header[0] = this.gzip ? 1 : 0;
    header.writeUInt32BE(body.length, 1);
    this.stream.write(Buffer.concat([header, body]));
  }

  /** Writes raw bytes as they are (no gRPC framing). */
  writeRaw(bytes: Uint8Array): void {
    this.stream.write(bytes);
  }

  /** Resets the stream at once (RST_STREAM CANCEL), as a client that gives up does. */
  cancel(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  end(): void {
    this.stream.end();
  }

  private count(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 5 && this.buffer.length >= 5 + this.buffer.readUInt32BE(1)) {
      this.buffer = this.buffer.subarray(5 + this.buffer.readUInt32BE(1));
      this.responses++;
    }
  }
}

const nodeOf = (id: string, metadata: Record<string, string>) => ({
  id,
  metadata: { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v }])) },
});

/** An encoded DiscoveryRequest. */
export function sotwRequest(r: {
  kind?: ResourceKind;
  typeUrl?: string;
  names?: string[];
  node?: { id: string; metadata: Record<string, string> };
  nonce?: string;
  version?: string;
  error?: string;
}): Uint8Array {
  const type = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  return type
    .encode(
      type.fromObject({
        type_url: r.typeUrl ?? (r.kind ? TypeUrl[r.kind] : ''),
        resource_names: r.names ?? [],
        version_info: r.version ?? '',
        response_nonce: r.nonce ?? '',
        ...(r.node ? { node: nodeOf(r.node.id, r.node.metadata) } : {}),
        ...(r.error ? { error_detail: { code: 3, message: r.error } } : {}),
      }),
    )
    .finish();
}

/** An encoded DeltaDiscoveryRequest. */
export function deltaRequest(r: {
  kind: ResourceKind;
  subscribe?: string[];
  unsubscribe?: string[];
  initial?: Record<string, string>;
  node?: { id: string; metadata: Record<string, string> };
}): Uint8Array {
  const type = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  return type
    .encode(
      type.fromObject({
        type_url: TypeUrl[r.kind],
        resource_names_subscribe: r.subscribe ?? [],
        resource_names_unsubscribe: r.unsubscribe ?? [],
        initial_resource_versions: r.initial ?? {},
        ...(r.node ? { node: nodeOf(r.node.id, r.node.metadata) } : {}),
      }),
    )
    .finish();
}
