// The grpc-js private fields and methods the ADS server relies on (src/xds/grpc-internals.ts, resetStream
// in budget.ts) are where it expects them. Each has a fallback that keeps the server working without
// it, only slower or holding more memory: this test is what makes a grpc-js upgrade that removes one
// fail loudly instead.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDiscoveryResponse, grpcFrameOf } from '../../src/envoy/encode.js';
import { resetStream } from '../../src/xds/budget.js';
import { releaseReadBuffers, writeFramesAsIs, type FramingCounters } from '../../src/xds/grpc-internals.js';
import { freePort } from '../helpers/net.js';
import { waitFor } from '../helpers/wait.js';

type Call = grpc.ServerDuplexStream<unknown, Buffer>;

const bytes = (b: Buffer): Buffer => b;
const method = {
  path: '/test.Echo/Chat',
  requestStream: true,
  responseStream: true,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
};

const message = encodeDiscoveryResponse({
  versionInfo: 'v1',
  typeUrl: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  nonce: 'n1',
  controlPlaneId: 'test',
  resources: [Buffer.alloc(100_000, 7)],
});
const counters: FramingCounters = { asIs: 0, copied: 0 };
const seen: { hooked?: boolean; released?: boolean } = {};
let server: grpc.Server;
let client: grpc.Client;

beforeAll(async () => {
  server = new grpc.Server();
  server.addService({ Chat: method } as grpc.ServiceDefinition, {
    Chat: (call: Call) => {
      seen.hooked = writeFramesAsIs(call, counters);
      call.on('data', (request: Buffer) => {
        seen.released = releaseReadBuffers(call);
        if (request.toString() === 'reset') return resetStream(call);
        // The same response encoded in its frame, then as a plain copy grpc-js must frame itself.
        call.write(message);
        call.write(Buffer.from(message));
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  const Client = grpc.makeGenericClientConstructor({ Chat: method } as grpc.ServiceDefinition, 'Echo');
  client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

describe('grpc-js internals', () => {
  it('a response encoded in its frame goes as is, a plain one is framed by grpc-js; both arrive alike', async () => {
    const call = (client as unknown as { Chat(): grpc.ClientDuplexStream<Buffer, Buffer> }).Chat();
    const received: Buffer[] = [];
    call.on('data', (b: Buffer) => received.push(b));
    call.on('error', () => {});
    call.write(Buffer.from('hello'));
    await waitFor('both responses', () => received.length === 2);
    expect(seen.hooked).toBe(true);
    expect(seen.released).toBe(true);
    expect(received[0]!.equals(message)).toBe(true);
    expect(received[1]!.equals(message)).toBe(true);
    expect(counters).toEqual({ asIs: grpcFrameOf(message)!.length, copied: message.length + 5 });
    call.end();
  });

  it("resetStream cancels the call's HTTP/2 stream", async () => {
    const call = (client as unknown as { Chat(): grpc.ClientDuplexStream<Buffer, Buffer> }).Chat();
    const error = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => {});
    call.write(Buffer.from('reset'));
    expect((await error).code).toBe(grpc.status.CANCELLED);
  });
});

describe('encoded responses carry their gRPC frame', () => {
  it('the frame is the 5-byte prefix (uncompressed, big-endian length) followed by the message, in place', () => {
    const frame = grpcFrameOf(message)!;
    expect(frame.length).toBe(message.length + 5);
    expect(frame[0]).toBe(0);
    expect(frame.readUInt32BE(1)).toBe(message.length);
    expect(frame.buffer).toBe(message.buffer);
    expect(frame.byteOffset + 5).toBe(message.byteOffset);
    expect(grpcFrameOf(Buffer.from(message))).toBeUndefined();
  });
});
