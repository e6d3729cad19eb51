// A change to one Service changes only that Service's resources: Envoy drains a filter chain, a
// listener or a cluster whose bytes change, and with it every tunnel riding it. For every golden case
// (test/golden/CASE/in.yaml) and every Service in it, translate with and without that Service: every
// filter chain, listener field and cluster of any other Service must be byte-identical (routes,
// endpoints and ECDS configs may change: Envoy applies those without draining anything).
import { describe, expect, it } from 'vitest';
import { encodeMessage, type ResourceObject } from '../../src/envoy/encode.js';
import { fromEnvoyJson } from '../../src/envoy/json.js';
import { lookupType } from '../../src/envoy/protos.js';
import { buildModel } from '../../src/model/build.js';
import type { SourcedObject } from '../../src/model/objects.js';
import { defaultModelOptions, type Tunnel } from '../../src/model/tunnel.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import { translate, type NodeView } from '../../src/translate/index.js';
import { objectOf } from '../../src/translate/resources.js';
import { goldenCases, readCase } from '../helpers/golden.js';

const typeUrl = (message: string) => `type.googleapis.com/envoy.config.${message}`;

/** The protobuf bytes Envoy would compare, as hex. */
function bytesOf(message: string, object: ResourceObject): string {
  const protoForm = fromEnvoyJson(lookupType(`envoy.config.${message}`), object);
  return Buffer.from(encodeMessage(typeUrl(message), protoForm)).toString('hex');
}

type Pieces = Map<string, string>;

/** Per piece (cluster, listener fields, filter chain) its bytes, keyed by resource and chain name. */
function piecesOf(objects: SourcedObject[], view: NodeView): Pieces {
  const { resources } = translate(buildModel(objects, defaultModelOptions), view);
  const out: Pieces = new Map();
  for (const r of resources.cluster) out.set(`cluster ${r.name}`, bytesOf('cluster.v3.Cluster', objectOf(r)));
  for (const r of resources.listener) {
    const { filter_chains: chains, ...fields } = objectOf(r) as { filter_chains?: ResourceObject[] };
    out.set(`listener ${r.name}`, bytesOf('listener.v3.Listener', fields));
    (chains ?? []).forEach((c, i) => {
      out.set(`listener ${r.name} chain ${String(c.name ?? i)}`, bytesOf('listener.v3.FilterChain', c));
    });
  }
  return out;
}

const serviceKey = (o: SourcedObject) => `${o.object.metadata?.namespace ?? 'default'}/${o.object.metadata?.name}`;

/**
 * The Services whose resources may change with `key`: itself, and those a TCPRoute ties to it (a
 * split's listener names its backends' clusters and subsets; a backend reached through a parent is
 * named after both).
 */
function tiedTo(tunnels: readonly Tunnel[], key: string): Set<string> {
  const byKey = new Map(tunnels.map((t) => [t.key, t]));
  const svc = (t: Tunnel) => `${t.service.namespace}/${t.service.name}`;
  const tied = new Set([key]);
  for (const t of tunnels) {
    const backends = (t.split ?? []).map((s) => byKey.get(s.tunnelKey)).filter((b): b is Tunnel => b !== undefined);
    const partners = [svc(t), ...(t.via ? [`${t.service.namespace}/${t.via.name}`] : []), ...backends.map(svc)];
    if (partners.includes(key)) for (const p of partners) tied.add(p);
  }
  return tied;
}

/** Whether a resource name is one of these Services' own (names carry `namespace/name`). */
function ownedBy(piece: string, services: Set<string>): boolean {
  const segments = piece.split(' ')[1]!.split('/');
  for (let i = 0; i + 1 < segments.length; i++) if (services.has(`${segments[i]}/${segments[i + 1]}`)) return true;
  // A TCPRoute backend reached through its parent: originate/<ns>/<parent>/<port>/<backend>/<port>.
  return segments.length === 6 && services.has(`${segments[1]}/${segments[4]}`);
}

function viewsOf(objects: SourcedObject[]): NodeView[] {
  const tunnels = buildModel(objects, defaultModelOptions).tunnels;
  const ips = [...new Set(tunnels.flatMap((t) => t.endpoints.map((e) => e.address)))];
  return [
    { role: 'originate' },
    { role: 'originate', listenAddress: '127.0.0.1' },
    { role: 'relay' },
    { role: 'terminate' },
    ...ips.map((ip): NodeView => ({ role: 'terminate', listenAddress: ip })),
  ];
}

/** Every Service whose removal changes another Service's piece, in every view. */
function crossChanges(objects: SourcedObject[]): string[] {
  const tunnels = buildModel(objects, defaultModelOptions).tunnels;
  const services = objects.filter((o) => o.object.kind === 'Service');
  const changed: string[] = [];
  for (const view of viewsOf(objects)) {
    const all = piecesOf(objects, view);
    for (const service of services) {
      const key = serviceKey(service);
      const tied = tiedTo(tunnels, key);
      const without = piecesOf(
        objects.filter((o) => o !== service),
        view,
      );
      for (const [piece, bytes] of without) {
        const other = all.get(piece);
        if (other === undefined || other === bytes || ownedBy(piece, tied)) continue;
        changed.push(`${view.role}@${view.listenAddress ?? '*'}: removing ${key} changes ${piece}`);
      }
    }
  }
  return changed;
}

const objectsOf = (name: string) => parseYamlObjects(`${name}/in.yaml`, readCase(name)).objects;

describe('a Service changes only its own filter chains, listeners and clusters', () => {
  for (const name of goldenCases()) {
    it(`${name}: with and without each Service, every other Service's pieces are byte-identical`, () => {
      expect(crossChanges(objectsOf(name))).toEqual([]);
    });
  }

  // Cases are small; together they put every kind of Service beside every other on shared ports,
  // IPs and relays (an object in two cases is taken once).
  it("every case together: with and without each Service, every other Service's pieces are byte-identical", () => {
    const byKey = new Map<string, SourcedObject>();
    for (const o of goldenCases().flatMap(objectsOf)) {
      const key = `${o.object.kind} ${serviceKey(o)}`;
      if (!byKey.has(key)) byKey.set(key, o);
    }
    const objects = [...byKey.values()];
    expect(crossChanges(objects)).toEqual([]);
  });
});
