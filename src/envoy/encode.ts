// Encoding of Envoy resources and discovery responses. Field numbers always come from the loaded
// protos, never from hand-written constants.
import { createHash } from 'node:crypto';
import protobuf from 'protobufjs';
import { lookupType, messageNameOf } from './protos.js';

export type ResourceObject = Record<string, unknown>;

/**
 * A resource encoded once: its Any bytes and a version derived from its content. Only bytes are kept
 * (the Envoy JSON it came from is garbage once encoded; views that show it translate again).
 */
export interface EncodedResource {
  name: string;
  typeUrl: string;
  version: string;
  /** google.protobuf.Any bytes (type_url + value). */
  any: Uint8Array;
  /** Hash of the Envoy JSON it was encoded from: a re-translated resource with the same hash is not encoded again. */
  jsonHash: string;
  /** What the translation calls this content (assembled resources): equal keys, equal bytes. */
  key?: string;
}

export function encodeMessage(typeUrl: string, object: ResourceObject): Uint8Array {
  const type = lookupType(messageNameOf(typeUrl));
  return type.encode(type.fromObject(object)).finish();
}

let anyFields: { typeUrl: number; value: number } | undefined;

/**
 * google.protobuf.Any bytes of a message, written in one buffer: the same bytes as encoding the message
 * and then an Any around it, without the message's own buffer. Small buffers are slices of Node's
 * shared 8 KB pool, so a discarded inner buffer would leave its share of a slab that the kept Any
 * pins (about half of the encoded bytes' memory at 10,000 Services).
 */
export function encodeAny(typeUrl: string, protoForm: ResourceObject): Uint8Array {
  const any = lookupType('google.protobuf.Any');
  anyFields ??= { typeUrl: any.fields['type_url']!.id, value: any.fields['value']!.id };
  const type = lookupType(messageNameOf(typeUrl));
  const w = protobuf.Writer.create();
  w.uint32((anyFields.typeUrl << 3) | 2).string(typeUrl);
  w.uint32((anyFields.value << 3) | 2).fork();
  type.encode(type.fromObject(protoForm), w);
  return w.ldelim().finish();
}

/**
 * `protoForm` is what protobufjs encodes; `object` is the Envoy JSON form kept for display. One literal
 * with every field (`key` too, when undefined): all encodings then share one hidden class, where a
 * spread and a property added after it gave each its own (~240 bytes apiece, 30,000 at 10,000 Services).
 */
export function encodeResource(
  typeUrl: string,
  name: string,
  protoForm: ResourceObject,
  object: ResourceObject,
  key?: string,
): EncodedResource {
  const any = encodeAny(typeUrl, protoForm);
  return { name, typeUrl, version: contentVersion(any), any, jsonHash: jsonHash(object), key };
}

export function jsonHash(object: ResourceObject): string {
  return contentVersion(JSON.stringify(object));
}

/**
 * The first 64 bits of the parts' SHA-256, as 16 hex digits. Written from the first 8 bytes of the
 * digest, not sliced from its 64-digit hex form: a slice of a string keeps the whole string alive,
 * and every encoded resource keeps two of these (about 180 bytes each instead of 32 at 10,000 Services).
 */
export function contentVersion(...parts: (Uint8Array | string)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest().toString('hex', 0, 8);
}

let responseFields:
  { resources: number; version: number; typeUrl: number; nonce: number; controlPlane: number } | undefined;

function fieldIds() {
  if (!responseFields) {
    const t = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
    const id = (name: string) => {
      const field = t.fields[name];
      if (!field) throw new Error(`DiscoveryResponse has no field ${name}`);
      return field.id;
    };
    responseFields = {
      resources: id('resources'),
      version: id('version_info'),
      typeUrl: id('type_url'),
      nonce: id('nonce'),
      controlPlane: id('control_plane'),
    };
  }
  return responseFields;
}

const controlPlaneType = () => lookupType('envoy.config.core.v3.ControlPlane');

/** gRPC's message prefix: a compressed flag (0) and the message's length, big-endian. */
const grpcPrefixBytes = 5;
const frames = new WeakMap<Uint8Array, Buffer>();

/** A writer that leaves room for the gRPC prefix before the message (filled by `finishFramed`). */
function framedWriter(): protobuf.Writer {
  return protobuf.Writer.create().fixed32(0).uint32(0);
}

/**
 * The message a `framedWriter` wrote, as a view of its gRPC frame: the frame is written once however
 * many streams send the message (`grpcFrameOf`, xds/grpc-internals.ts), and no byte is copied.
 */
function finishFramed(w: protobuf.Writer): Buffer {
  const out = w.finish();
  const frame = Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(frame.length - grpcPrefixBytes, 1);
  const message = frame.subarray(grpcPrefixBytes);
  frames.set(message, frame);
  return message;
}

/** The gRPC frame (prefix and message) a response was encoded in, if it was encoded here. */
export function grpcFrameOf(message: Uint8Array): Buffer | undefined {
  return frames.get(message);
}

/**
 * A DiscoveryResponse written around already-encoded Any resources. Streams that receive the same
 * response share these bytes (xds/base-stream.ts), nonce included, and the gRPC frame around them.
 */
export function encodeDiscoveryResponse(args: {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  controlPlaneId: string;
  resources: readonly Uint8Array[];
}): Buffer {
  const ids = fieldIds();
  const w = framedWriter();
  w.uint32((ids.version << 3) | 2).string(args.versionInfo);
  for (const any of args.resources) w.uint32((ids.resources << 3) | 2).bytes(any);
  w.uint32((ids.typeUrl << 3) | 2).string(args.typeUrl);
  w.uint32((ids.nonce << 3) | 2).string(args.nonce);
  const cp = controlPlaneType();
  w.uint32((ids.controlPlane << 3) | 2).bytes(cp.encode(cp.create({ identifier: args.controlPlaneId })).finish());
  return finishFramed(w);
}

/** Decodes Any-wrapped resources to JSON-friendly objects (for tests and debugging). */
export function decodeAny(anyBytesOrMessage: Uint8Array | { type_url: string; value: Uint8Array }): {
  typeUrl: string;
  object: ResourceObject;
} {
  const anyType = lookupType('google.protobuf.Any');
  const any =
    anyBytesOrMessage instanceof Uint8Array
      ? (anyType.decode(anyBytesOrMessage) as unknown as { type_url: string; value: Uint8Array })
      : anyBytesOrMessage;
  const type = lookupType(messageNameOf(any.type_url));
  const object = type.toObject(type.decode(any.value), toObjectOptions) as ResourceObject;
  return { typeUrl: any.type_url, object };
}

/** How resources are shown as data: enums by name, 64-bit numbers as strings, Any with @type. */
export const toObjectOptions: protobuf.IConversionOptions = {
  enums: String,
  longs: String,
  json: true,
  defaults: false,
};

function fieldIdsOf(typeName: string, names: readonly string[]): Record<string, number> {
  const t = lookupType(typeName);
  const out: Record<string, number> = {};
  for (const name of names) {
    const field = t.fields[name];
    if (!field) throw new Error(`${typeName} has no field ${name}`);
    out[name] = field.id;
  }
  return out;
}

let deltaFields: { response: Record<string, number>; resource: Record<string, number> } | undefined;

function deltaIds() {
  deltaFields ??= {
    response: fieldIdsOf('envoy.service.discovery.v3.DeltaDiscoveryResponse', [
      'system_version_info',
      'resources',
      'type_url',
      'removed_resources',
      'nonce',
      'control_plane',
    ]),
    resource: fieldIdsOf('envoy.service.discovery.v3.Resource', ['name', 'version', 'resource']),
  };
  return deltaFields;
}

const deltaBytes = new WeakMap<EncodedResource, Uint8Array>();

/**
 * The delta `Resource` message (name, version, Any) of an encoded resource, written once per content
 * version and shared by every delta stream that sends it.
 */
export function deltaResourceBytes(resource: EncodedResource): Uint8Array {
  let bytes = deltaBytes.get(resource);
  if (!bytes) {
    const ids = deltaIds().resource;
    const w = protobuf.Writer.create();
    w.uint32((ids.name! << 3) | 2).string(resource.name);
    w.uint32((ids.version! << 3) | 2).string(resource.version);
    w.uint32((ids.resource! << 3) | 2).bytes(resource.any);
    bytes = w.finish();
    deltaBytes.set(resource, bytes);
  }
  return bytes;
}

/** A DeltaDiscoveryResponse written around pre-encoded `Resource` messages (and framed, as above). */
export function encodeDeltaDiscoveryResponse(args: {
  systemVersionInfo: string;
  typeUrl: string;
  nonce: string;
  controlPlaneId: string;
  resources: readonly Uint8Array[];
  removed: readonly string[];
}): Buffer {
  const ids = deltaIds().response;
  const w = framedWriter();
  w.uint32((ids.system_version_info! << 3) | 2).string(args.systemVersionInfo);
  for (const r of args.resources) w.uint32((ids.resources! << 3) | 2).bytes(r);
  w.uint32((ids.type_url! << 3) | 2).string(args.typeUrl);
  for (const name of args.removed) w.uint32((ids.removed_resources! << 3) | 2).string(name);
  w.uint32((ids.nonce! << 3) | 2).string(args.nonce);
  const cp = controlPlaneType();
  w.uint32((ids.control_plane! << 3) | 2).bytes(cp.encode(cp.create({ identifier: args.controlPlaneId })).finish());
  return finishFramed(w);
}
