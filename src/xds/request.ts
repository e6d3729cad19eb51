// Decoding of state-of-the-world requests. Every SotW ACK repeats the client's whole subscription
// (1,000 EDS names per originating Envoy in the benchmark), and almost always unchanged. So the names
// are not decoded per request: the request keeps their raw bytes, and equal bytes map to one shared,
// read-only subscription (the same Set object for every live stream of a server that sends the same
// list), kept only while a stream holds it (SubscriptionTable, one per server).
import protobuf from 'protobufjs';
import { lookupType } from '../envoy/protos.js';
import { isWildcard } from './decide.js';
import { errorMessage } from '../errors.js';

export interface Subscription {
  /** The resource_names bytes (an own copy, shared like the rest). */
  readonly raw: Uint8Array;
  /** The names as sent, in order. */
  readonly list: readonly string[];
  /** The same names without `*`: shared by every stream that sent these bytes; never mutate it. */
  readonly set: ReadonlySet<string>;
  /** True for an empty list or one containing `*` (a wildcard request for LDS and CDS). */
  readonly wildcardish: boolean;
  /** Names this subscription in its table while it lives (a short key for responses that carry all of it). */
  readonly id: number;
}

export interface DecodedRequest {
  version_info?: string;
  type_url?: string;
  response_nonce?: string;
  error_detail?: { code?: number; message?: string } | null;
  node?: unknown;
  /** resource_names exactly as encoded (empty when none): compare these, decode only on a change. */
  namesRaw?: Uint8Array;
}

// Module-level, yet invisible: field numbers read once from the loaded protos, never changed.
interface Fields {
  version: number;
  node: number;
  names: number;
  typeUrl: number;
  nonce: number;
  error: number;
  nodeType: protobuf.Type;
  statusType: protobuf.Type;
}
let fields: Fields | undefined;

function fieldIds(): Fields {
  if (!fields) {
    const t = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
    const field = (name: string) => {
      const f = t.fields[name];
      if (!f) throw new Error(`DiscoveryRequest has no field ${name}`);
      return f;
    };
    fields = {
      version: field('version_info').id,
      node: field('node').id,
      names: field('resource_names').id,
      typeUrl: field('type_url').id,
      nonce: field('response_nonce').id,
      error: field('error_detail').id,
      nodeType: field('node').resolvedType as protobuf.Type,
      statusType: field('error_detail').resolvedType as protobuf.Type,
    };
  }
  return fields;
}

const empty = new Uint8Array(0);

/** A request that did not decode: the stream ends with INVALID_ARGUMENT and this message. */
export interface MalformedRequest {
  malformed: string;
}

export function isMalformed(request: object): request is MalformedRequest {
  return typeof (request as MalformedRequest).malformed === 'string';
}

/**
 * A server-side deserializer that hands malformed bytes on as a MalformedRequest instead of throwing
 * (grpc-js would end the stream with INTERNAL and a generic message): the client learns what is wrong.
 */
export function tolerant(messageName: string, decode: (bytes: Buffer) => object): (bytes: Buffer) => object {
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (err) {
      const malformed = `malformed ${messageName} (${bytes.length} bytes): ${errorMessage(err)}`;
      return { malformed } satisfies MalformedRequest;
    }
  };
}

/**
 * Decodes a DiscoveryRequest, leaving resource_names as raw bytes (see SubscriptionTable.of); names
 * equal to a subscription `known` holds are recognised without being walked.
 */
export function decodeSotwRequest(bytes: Uint8Array, known?: SubscriptionTable): DecodedRequest {
  const f = fieldIds();
  const r = protobuf.Reader.create(bytes);
  const out: DecodedRequest = {};
  let namesStart = -1;
  let namesEnd = -1;
  let held: Subscription | undefined;
  let interleaved = false;
  while (r.pos < r.len) {
    const at = r.pos;
    const tag = r.uint32();
    const id = tag >>> 3;
    if (id === f.names) {
      if ((tag & 7) !== 2) throw new Error(`resource_names: wire type ${tag & 7}, expected 2 (length-delimited)`);
      // An ACK repeats a subscription seen before: recognise it with one memcmp instead of walking it.
      if (namesStart < 0 && !held && (held = known?.at(bytes, at, f.names))) {
        r.pos = at + held.raw.length;
        continue;
      }
      if (held || (namesStart >= 0 && namesEnd !== at)) interleaved = true;
      if (namesStart < 0) namesStart = at;
      r.skipType(tag & 7);
      namesEnd = r.pos;
    } else if (id === f.version) out.version_info = r.string();
    else if (id === f.typeUrl) out.type_url = r.string();
    else if (id === f.nonce) out.response_nonce = r.string();
    else if (id === f.node) out.node = f.nodeType.decode(r.bytes());
    else if (id === f.error) out.error_detail = f.statusType.decode(r.bytes()) as DecodedRequest['error_detail'];
    else r.skipType(tag & 7);
  }
  // Names interleaved with other fields (legal, never seen from Envoy): gather them.
  if (interleaved) out.namesRaw = gatherNames(bytes, f.names);
  else out.namesRaw = held?.raw ?? (namesStart < 0 ? empty : bytes.subarray(namesStart, namesEnd));
  return out;
}

function gatherNames(bytes: Uint8Array, namesId: number): Uint8Array {
  const r = protobuf.Reader.create(bytes);
  const parts: Uint8Array[] = [];
  while (r.pos < r.len) {
    const at = r.pos;
    const tag = r.uint32();
    r.skipType(tag & 7);
    if (tag >>> 3 === namesId) parts.push(bytes.subarray(at, r.pos));
  }
  return Buffer.concat(parts);
}

/**
 * What one client may ask for: names in one request, and bytes of names its subscriptions hold across
 * types (SotW: the resource_names bytes; delta: the names' UTF-16 length). A fleet needs a few
 * thousand names per Envoy; a client over these limits gets RESOURCE_EXHAUSTED naming the limit.
 */
export const requestLimits = { namesPerRequest: 100_000, nameBytesPerStream: 8 * 1024 * 1024 };

/** A request over `requestLimits`: the stream ends with RESOURCE_EXHAUSTED and this message. */
export class RequestLimitError extends Error {}

export function checkNamesPerRequest(count: number, what: string): void {
  if (count > requestLimits.namesPerRequest) {
    const limit = requestLimits.namesPerRequest;
    throw new RequestLimitError(`${what}: ${count} names in one request; the limit is ${limit}`);
  }
}

export function checkNameBytes(bytes: number): void {
  if (bytes > requestLimits.nameBytesPerStream) {
    const limit = requestLimits.nameBytesPerStream;
    const held = `subscriptions of this stream would hold ${bytes} bytes of resource names`;
    throw new RequestLimitError(`${held}; the limit is ${limit}`);
  }
}

interface Interned extends Subscription {
  /** Live streams holding it; at 0 it is dropped, so nothing a client asked for outlives its streams. */
  refs: number;
  /** The last `added` answer into this subscription, and from which one. */
  addedSince?: { from: number; names: ReadonlySet<string> };
}

const latin1 = new TextDecoder('latin1');

/** The first field of encoded resource_names at `at`, as a map key. */
function firstFieldKey(bytes: Uint8Array, at: number): string {
  const r = protobuf.Reader.create(bytes);
  r.pos = at;
  r.uint32();
  r.skipType(2);
  return latin1.decode(bytes.subarray(at, r.pos));
}

/**
 * The subscriptions held by live streams of one server, by the bytes of their first name (buckets are
 * compared with memcmp). Remembers each while a stream holds it; the last release drops it.
 */
export class SubscriptionTable {
  private readonly byFirstName = new Map<string, Interned[]>();
  private lastId = 0;
  /**
   * Names in `to` that `from` lacks, computed once for every stream that makes the same move (500
   * originators subscribing to one new cluster's endpoints cost one pass over 1,000 names, not 500).
   * Kept on `to`, so it goes when the last stream holding `to` releases it.
   */
  added(from: Subscription, to: Subscription): ReadonlySet<string> {
    const target = to as Interned;
    if (target.addedSince?.from !== from.id) {
      const names = new Set([...to.set].filter((name) => !from.set.has(name)));
      target.addedSince = { from: from.id, names };
    }
    return target.addedSince.names;
  }

  /** Distinct subscriptions held, and their bytes (tests and benchmarks). */
  stats(): { count: number; bytes: number } {
    let count = 0;
    let bytes = 0;
    for (const bucket of this.byFirstName.values()) {
      count += bucket.length;
      for (const sub of bucket) bytes += sub.raw.length;
    }
    return { count, bytes };
  }

  /** A held subscription whose bytes start at `at` in `bytes` and are followed by no further name. */
  at(bytes: Uint8Array, at: number, namesId: number): Subscription | undefined {
    const bucket = this.byFirstName.get(firstFieldKey(bytes, at));
    if (!bucket) return undefined;
    for (const sub of bucket) {
      const end = at + sub.raw.length;
      if (end > bytes.length || Buffer.compare(bytes.subarray(at, end), sub.raw) !== 0) continue;
      if (end === bytes.length) return sub;
      const r = protobuf.Reader.create(bytes);
      r.pos = end;
      if (r.uint32() >>> 3 !== namesId) return sub;
    }
    return undefined;
  }

  /**
   * The subscription that `raw` (resource_names bytes) encodes, shared with every live stream that sent
   * the same bytes. The caller holds a reference until it calls `release`.
   */
  of(raw: Uint8Array): Subscription {
    const key = raw.length === 0 ? '' : firstFieldKey(raw, 0);
    const bucket = this.byFirstName.get(key);
    const hit = bucket?.find((sub) => sub.raw === raw || Buffer.compare(sub.raw, raw) === 0);
    if (hit) {
      hit.refs++;
      return hit;
    }
    const list = decodeNames(raw);
    // Own copy: `raw` points into a request buffer that would otherwise stay alive.
    const set = new Set(list.filter((n) => n !== '*'));
    const sub: Interned = {
      raw: Uint8Array.from(raw),
      list,
      set,
      wildcardish: isWildcard(list),
      id: ++this.lastId,
      refs: 1,
    };
    if (bucket) bucket.push(sub);
    else this.byFirstName.set(key, [sub]);
    return sub;
  }

  /** A stream stopped holding `sub` (it subscribed to other names, or ended). */
  release(sub: Subscription): void {
    const held = sub as Interned;
    if (--held.refs > 0) return;
    const key = held.raw.length === 0 ? '' : firstFieldKey(held.raw, 0);
    const bucket = this.byFirstName.get(key);
    const i = bucket?.indexOf(held) ?? -1;
    if (i < 0) return;
    bucket!.splice(i, 1);
    if (bucket!.length === 0) this.byFirstName.delete(key);
  }
}

function decodeNames(raw: Uint8Array): string[] {
  const r = protobuf.Reader.create(raw);
  const out: string[] = [];
  while (r.pos < r.len) {
    r.uint32();
    out.push(r.string());
    if (out.length > requestLimits.namesPerRequest) checkNamesPerRequest(countNames(raw), 'resource_names');
  }
  return out;
}

function countNames(raw: Uint8Array): number {
  const r = protobuf.Reader.create(raw);
  let n = 0;
  for (; r.pos < r.len; n++) r.skipType(r.uint32() & 7);
  return n;
}
