// What the ADS server does through grpc-js 1.14's private fields and methods, each feature-detected:
// if an upgrade moves one, the server takes grpc-js's own path, and test/unit/grpc-internals.test.ts
// fails, so the fallback is never silent (it checks resetStream in budget.ts too).
import type * as grpc from '@grpc/grpc-js';
import { grpcFrameOf } from '../envoy/encode.js';

type AnyCall = grpc.ServerDuplexStream<unknown, Buffer>;

/** The server-side call grpc-js keeps behind a stream (no interceptors: its BaseServerInterceptingCall). */
interface InnerCall {
  serializeMessage?: (value: unknown) => Buffer;
  decoder?: { readState?: number; readPartialMessage?: unknown[]; readCompressFlag?: Buffer };
}

const innerCall = (call: AnyCall) => (call as unknown as { call?: InnerCall }).call;

/**
 * Bytes of responses written in the gRPC frame they were encoded in, and bytes grpc-js framed (copied)
 * itself on hooked streams (responses encoded elsewhere).
 */
export interface FramingCounters {
  asIs: number;
  copied: number;
}

/**
 * Lets grpc-js write responses encoded in their gRPC frame (envoy/encode.ts) as they are. Its own
 * serializeMessage allocates prefix + message and copies the message in, once per stream: a CDS state
 * of 1,000 Services shared by 500 streams was copied 500 times. The frame is never written to after
 * it is encoded, so HTTP/2 streams can share it. Anything else (no frame) goes grpc-js's way. Returns
 * whether the hook is in place.
 */
export function writeFramesAsIs(call: AnyCall, counters: FramingCounters): boolean {
  const inner = innerCall(call);
  const serialize = inner?.serializeMessage;
  if (!inner || typeof serialize !== 'function') return false;
  inner.serializeMessage = (value: unknown): Buffer => {
    const frame = value instanceof Uint8Array ? grpcFrameOf(value) : undefined;
    if (frame) {
      counters.asIs += frame.length;
      return frame;
    }
    const framed = serialize.call(inner, value);
    counters.copied += framed.length;
    return framed;
  };
  return true;
}

const noBytes = Buffer.alloc(1);

/**
 * grpc-js 1.14's StreamDecoder keeps the last request's chunks, slices of 64 KiB socket reads, until
 * the next request arrives: on an idle stream that holds tens of kilobytes, and at 10,000 Services a
 * 300 KB ACK per stream. Between messages the decoder overwrites both fields before reading them, so
 * dropping them then is safe. Returns whether it found the decoder between messages.
 */
export function releaseReadBuffers(call: AnyCall): boolean {
  const decoder = innerCall(call)?.decoder;
  if (decoder?.readState !== 0 || !Array.isArray(decoder.readPartialMessage)) return false;
  decoder.readPartialMessage = [];
  decoder.readCompressFlag = noBytes;
  return true;
}
