// Just enough protobuf reading for the load generator to act like Envoy without decoding whole
// responses: top-level fields of a (Delta)DiscoveryResponse, and the name and type of a Cluster.
// Field numbers come from the loaded protos, as everywhere else.
import { lookupType } from '../src/envoy/protos.js';

export interface Field {
  id: number;
  wire: number;
  value: number;
  bytes?: Uint8Array;
}

export function* fields(buf: Uint8Array): Generator<Field> {
  let i = 0;
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
    const wire = key & 7;
    const id = Math.floor(key / 8);
    if (wire === 0) yield { id, wire, value: varint() };
    else if (wire === 2) {
      const len = varint();
      yield { id, wire, value: len, bytes: buf.subarray(i, i + len) };
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`wire type ${wire}`);
  }
}

const id = (type: string, field: string) => lookupType(type).fields[field]!.id;
const text = new TextDecoder();

export const F = {
  sotw: { version: id('envoy.service.discovery.v3.DiscoveryResponse', 'version_info'), resources: id('envoy.service.discovery.v3.DiscoveryResponse', 'resources'), typeUrl: id('envoy.service.discovery.v3.DiscoveryResponse', 'type_url'), nonce: id('envoy.service.discovery.v3.DiscoveryResponse', 'nonce') },
  delta: { resources: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'resources'), typeUrl: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'type_url'), nonce: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'nonce'), removed: id('envoy.service.discovery.v3.DeltaDiscoveryResponse', 'removed_resources') },
  resource: { name: id('envoy.service.discovery.v3.Resource', 'name'), resource: id('envoy.service.discovery.v3.Resource', 'resource') },
  any: { value: id('google.protobuf.Any', 'value') },
  cluster: { name: id('envoy.config.cluster.v3.Cluster', 'name'), type: id('envoy.config.cluster.v3.Cluster', 'type') },
  edsType: lookupType('envoy.config.cluster.v3.Cluster').lookupEnum('DiscoveryType').values.EDS!,
};

export interface Light {
  typeUrl: string;
  nonce: string;
  version: string;
  /** SotW: Any bytes; delta: Any bytes of each Resource. */
  anys: Uint8Array[];
  /** Delta only: names of the resources carried and removed. */
  names: string[];
  removed: string[];
}

export function readResponse(buf: Uint8Array, delta: boolean): Light {
  const out: Light = { typeUrl: '', nonce: '', version: '', anys: [], names: [], removed: [] };
  const f = delta ? F.delta : F.sotw;
  for (const x of fields(buf)) {
    if (x.id === f.typeUrl) out.typeUrl = text.decode(x.bytes);
    else if (x.id === f.nonce) out.nonce = text.decode(x.bytes);
    else if (!delta && x.id === F.sotw.version) out.version = text.decode(x.bytes);
    else if (x.id === f.resources) {
      if (!delta) out.anys.push(x.bytes!);
      else
        for (const r of fields(x.bytes!)) {
          if (r.id === F.resource.name) out.names.push(text.decode(r.bytes));
          else if (r.id === F.resource.resource) out.anys.push(r.bytes!);
        }
    } else if (delta && x.id === F.delta.removed) out.removed.push(text.decode(x.bytes));
  }
  return out;
}

/** Name of a Cluster in an Any, and whether it is an EDS cluster (Envoy then subscribes to its endpoints). */
export function clusterOf(any: Uint8Array): { name: string; eds: boolean } {
  let value: Uint8Array | undefined;
  for (const x of fields(any)) if (x.id === F.any.value) value = x.bytes;
  let name = '';
  let eds = false;
  for (const x of fields(value!)) {
    if (x.id === F.cluster.name) name = text.decode(x.bytes);
    else if (x.id === F.cluster.type) eds = x.value === F.edsType;
  }
  return { name, eds };
}
