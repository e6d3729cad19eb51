// Just enough protobuf reading for the load generator to act like Envoy without decoding whole
// responses: top-level fields of a (Delta)DiscoveryResponse, and the name and type of a Cluster.
// Field numbers come from the loaded protos, as everywhere else.
import { lookupType } from '../src/envoy/protos.js';

export interface Field {
  id: number;
  wire: number;
  value: number;
  /** Length-delimited fields: where the bytes are (buf.subarray(start, end) to read them). */
  start: number;
  end: number;
}

/**
 * Calls `visit` for each top-level field of `buf` (no allocation per field: the same object is
 * reused, so copy what you keep). A plain loop, since the generator it replaced cost the load
 * generator more than the server it measures.
 */
export function eachField(buf: Uint8Array, visit: (f: Field) => void | number): void {
  let i = 0;
  const f: Field = { id: 0, wire: 0, value: 0, start: 0, end: 0 };
  const varint = () => {
    let out = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++]!;
      out += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return out;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const key = varint();
    f.wire = key & 7;
    f.id = Math.floor(key / 8);
    if (f.wire === 0) {
      f.value = varint();
      visit(f);
    } else if (f.wire === 2) {
      f.value = varint();
      f.start = i;
      f.end = i + f.value;
      i = f.end;
      // A visitor may skip ahead: it returns where the next field starts.
      const next = visit(f);
      if (typeof next === 'number') i = next;
    } else if (f.wire === 1) i += 8;
    else if (f.wire === 5) i += 4;
    else throw new Error(`wire type ${f.wire}`);
  }
}

const id = (type: string, field: string) => lookupType(type).fields[field]!.id;
const text = new TextDecoder();

export const F = {
  sotw: {
    version: id('envoy.service.discovery.v3.DiscoveryResponse', 'version_info'),
    resources: id('envoy.service.discovery.v3.DiscoveryResponse', 'resources'),
    typeUrl: id('envoy.service.discovery.v3.DiscoveryResponse', 'type_url'),
    nonce: id('envoy.service.discovery.v3.DiscoveryResponse', 'nonce'),
  },
  delta: {
    resources: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'resources'),
    typeUrl: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'type_url'),
    nonce: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'nonce'),
    removed: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'removed_resources'),
  },
  resource: {
    name: id('envoy.service.discovery.v3.Resource', 'name'),
    version: id('envoy.service.discovery.v3.Resource', 'version'),
    resource: id('envoy.service.discovery.v3.Resource', 'resource'),
  },
  any: { value: id('google.protobuf.Any', 'value') },
  cluster: { name: id('envoy.config.cluster.v3.Cluster', 'name'), type: id('envoy.config.cluster.v3.Cluster', 'type') },
  edsType: lookupType('envoy.config.cluster.v3.Cluster').lookupEnum('DiscoveryType').values.EDS!,
};

export interface Light {
  typeUrl: string;
  nonce: string;
  version: string;
  /**
   * Delta only: names and versions of the resources carried (read for clusters only: the generator needs no
   * others), and names removed.
   */
  names: string[];
  versions: string[];
  removed: string[];
}

const clusterType = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const listenerType = 'type.googleapis.com/envoy.config.listener.v3.Listener';
/**
 * SotW CDS and LDS responses carry the full state, and equal versions mean equal resources: where they
 * end, by version and length, so 500 streams' copies are not walked resource by resource.
 */
const resourcesEndByContent = new Map<string, number>();

const latin1 = new TextDecoder('latin1');
const str = (buf: Uint8Array, f: Field) => text.decode(buf.subarray(f.start, f.end));

/** The top-level fields the load generator acts on; resources are left where they are (see eachResource). */
export function readResponse(buf: Uint8Array, delta: boolean): Light {
  const out: Light = { typeUrl: '', nonce: '', version: '', names: [], versions: [], removed: [] };
  const ranges: number[] = [];
  const d = F.delta;
  const s = F.sotw;
  let key = '';
  let resourcesEnd = 0;
  eachField(buf, (x) => {
    if (delta) {
      if (x.id === d.typeUrl) out.typeUrl = latin1.decode(buf.subarray(x.start, x.end));
      else if (x.id === d.nonce) out.nonce = str(buf, x);
      else if (x.id === d.removed) out.removed.push(str(buf, x));
      else if (x.id === d.resources) ranges.push(x.start, x.end);
    } else if (x.id === s.typeUrl) out.typeUrl = latin1.decode(buf.subarray(x.start, x.end));
    else if (x.id === s.nonce) out.nonce = str(buf, x);
    else if (x.id === s.resources) resourcesEnd = x.end;
    else if (x.id === s.version) {
      out.version = str(buf, x);
      // The same full state (CDS, LDS) seen before: its resources end at the same place.
      key = `${out.version}|${buf.length}`;
      const end = resourcesEndByContent.get(key);
      return end !== undefined && end > x.end ? end : undefined;
    }
  });
  if (!delta && resourcesEnd && (out.typeUrl === clusterType || out.typeUrl === listenerType)) {
    if (resourcesEndByContent.size >= 64) resourcesEndByContent.clear();
    resourcesEndByContent.set(key, resourcesEnd);
  }
  if (out.typeUrl !== clusterType) return out;
  for (let i = 0; i < ranges.length; i += 2) {
    const r = buf.subarray(ranges[i], ranges[i + 1]);
    eachField(r, (y) => {
      if (y.id === F.resource.name) out.names.push(str(r, y));
      else if (y.id === F.resource.version) out.versions.push(str(r, y));
    });
  }
  return out;
}

/** Calls `visit` with the Any bytes of every resource in a state-of-the-world response. */
export function eachResource(buf: Uint8Array, visit: (any: Uint8Array) => void): void {
  eachField(buf, (x) => {
    if (x.id === F.sotw.resources) visit(buf.subarray(x.start, x.end));
  });
}

/** Calls `visit` with the version and Any bytes of every resource in a delta response. */
export function eachDeltaResource(buf: Uint8Array, visit: (version: string, any: Uint8Array) => void): void {
  eachField(buf, (x) => {
    if (x.id !== F.delta.resources) return;
    const r = buf.subarray(x.start, x.end);
    let version = '';
    let any: Uint8Array | undefined;
    eachField(r, (y) => {
      if (y.id === F.resource.version) version = str(r, y);
      else if (y.id === F.resource.resource) any = r.subarray(y.start, y.end);
    });
    if (any) visit(version, any);
  });
}

/** Name of a Cluster in an Any, and whether it is an EDS cluster (Envoy then subscribes to its endpoints). */
export function clusterOf(any: Uint8Array): { name: string; eds: boolean } {
  let value: Uint8Array | undefined;
  eachField(any, (x) => {
    if (x.id === F.any.value) value = any.subarray(x.start, x.end);
  });
  let name = '';
  let eds = false;
  eachField(value!, (x) => {
    if (x.id === F.cluster.name) name = str(value!, x);
    else if (x.id === F.cluster.type) eds = x.value === F.edsType;
  });
  return { name, eds };
}
