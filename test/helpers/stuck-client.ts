// A state-of-the-world ADS client on raw HTTP/2 that stops reading, as a stuck Envoy does. (A grpc-js
// client keeps reading and buffering whatever arrives, so it cannot stand in for one.) HTTP/2 flow
// control then stops the server's writes once the stream window (64 KiB) is full.
import http2 from 'node:http2';
import { TypeUrl, lookupType, type ResourceKind } from '../../src/envoy/protos.js';

export class StuckClient {
  private readonly session: http2.ClientHttp2Session;
  private readonly stream: http2.ClientHttp2Stream;
  private buffer = Buffer.alloc(0);
  readonly responses: { kind: string; resources: number; nonce: string; version: string }[] = [];

  constructor(address: string, id: string, metadata: Record<string, string>, kinds: ResourceKind[]) {
    this.session = http2.connect(`http://${address}`, { settings: { initialWindowSize: 65535 } });
    this.session.on('error', () => {});
    this.stream = this.session.request({
      ':method': 'POST',
      ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.stream.on('error', () => {});
    kinds.forEach((kind, i) => {
      const request: Record<string, unknown> = { type_url: TypeUrl[kind] };
      if (i === 0)
        request.node = {
          id,
          metadata: { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v }])) },
        };
      this.stream.write(frame('envoy.service.discovery.v3.DiscoveryRequest', request));
    });
    this.stream.pause();
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  private onData(chunk: Buffer) {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const type = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
    while (this.buffer.length >= 5) {
      const length = this.buffer.readUInt32BE(1);
      if (this.buffer.length < 5 + length) return;
      const r = type.decode(this.buffer.subarray(5, 5 + length)) as any;
      this.buffer = this.buffer.subarray(5 + length);
      this.responses.push({ kind: r.type_url, resources: r.resources.length, nonce: r.nonce, version: r.version_info });
    }
  }

  close(): void {
    this.stream.close();
    this.session.destroy();
  }
}

function frame(typeName: string, object: Record<string, unknown>): Buffer {
  const type = lookupType(typeName);
  const body = type.encode(type.fromObject(object)).finish();
  const header = Buffer.alloc(5);
  header.writeUInt32BE(body.length, 1);
  return Buffer.concat([header, body]);
}
