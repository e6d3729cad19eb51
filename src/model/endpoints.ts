// EndpointSlices and Pods -> ready endpoints per Service port, with the Pod labels subsets select by.
// Parsed once per slice object: a change re-parses only the slices it touched, and lists whose
// endpoints did not change keep their identity, so everything built from them downstream is reused.
import { isIP } from 'node:net';
import { Collector } from './collector.js';
import type { Diagnostic } from './diagnostics.js';
import type { KubeObject, SourcedObject } from './objects.js';
import type { Endpoint } from './tunnel.js';

interface SliceEndpoint {
  addresses?: string[];
  conditions?: { ready?: boolean | null };
  targetRef?: { kind?: string; name?: string; namespace?: string };
}

interface SliceSpec {
  addressType?: string;
  endpoints?: SliceEndpoint[];
  ports?: { name?: string; port?: unknown; protocol?: string }[];
}

const serviceNameLabel = 'kubernetes.io/service-name';

/** Pod labels (what metadata-match selects by) and service account, by `namespace/name` and `namespace/ip`. */
export type PodIndex = Map<string, { labels: Record<string, string>; serviceAccount?: string }>;

/**
 * One model builder's endpoint parsing (model/build.ts ModelBuilder), remembered between its builds.
 * Without state of its own it would be the pure functions below with nothing kept.
 */
export class EndpointParser {
  /** The last pod index, kept while the very same Pod objects come back: slices parsed against it stay valid. */
  private lastPods?: { objects: SourcedObject[]; index: PodIndex };
  /** Parsed slices by object, valid for the pod index they were parsed with; dropped with the slice object. */
  private readonly slices = new WeakMap<SourcedObject, { pods: PodIndex; parsed: ParsedSlice }>();

  indexPods(pods: SourcedObject[]): PodIndex {
    const last = this.lastPods;
    if (last && last.objects.length === pods.length && last.objects.every((o, i) => o === pods[i])) return last.index;
    const index = indexPods(pods);
    this.lastPods = { objects: pods, index };
    return index;
  }

  parseSlice(sourced: SourcedObject, pods: PodIndex): ParsedSlice {
    const known = this.slices.get(sourced);
    if (known && known.pods === pods) return known.parsed;
    const parsed = parseSlice(sourced, pods);
    this.slices.set(sourced, { pods, parsed });
    return parsed;
  }
}

function indexPods(pods: SourcedObject[]): PodIndex {
  const index: PodIndex = new Map();
  for (const { object } of pods) {
    const ns = object.metadata?.namespace ?? 'default';
    const labels = object.metadata?.labels ?? {};
    const account = (object.spec as { serviceAccountName?: unknown } | undefined)?.serviceAccountName;
    const pod = typeof account === 'string' && account ? { labels, serviceAccount: account } : { labels };
    if (object.metadata?.name) index.set(`${ns}/${object.metadata.name}`, pod);
    const status = (object.status ?? {}) as { podIP?: string; podIPs?: { ip?: string }[] };
    for (const ip of [status.podIP, ...(status.podIPs ?? []).map((p) => p.ip)])
      if (ip) index.set(`${ns}/ip/${ip}`, pod);
  }
  return index;
}

/** Ready endpoints per Service (`namespace/name`) and per port name. */
export type EndpointIndex = Map<string, Map<string, Endpoint[]>>;

/** What one EndpointSlice contributes: ready endpoints per port name of one Service. */
interface ParsedSlice {
  serviceKey?: string;
  /** Sorted and without duplicates; the Service's own entry in the index when it has only this slice. */
  byPort: Map<string, Endpoint[]>;
  diagnostics: Diagnostic[];
}

function parseSlice(sourced: SourcedObject, pods: PodIndex): ParsedSlice {
  const slice = sourced.object;
  const report = new Collector(sourced);
  const parsed: ParsedSlice = { byPort: new Map(), diagnostics: report.diagnostics };
  const serviceName = slice.metadata?.labels?.[serviceNameLabel];
  if (!serviceName) {
    report.warn(
      'MissingServiceName',
      ['metadata', 'labels', serviceNameLabel],
      'EndpointSlice has no service-name label; ignored',
    );
    return parsed;
  }
  const spec = slice as KubeObject & SliceSpec;
  if (spec.addressType === 'FQDN') {
    report.warn('UnsupportedAddressType', ['addressType'], 'FQDN endpoints are not tunneled');
    return parsed;
  }
  const ns = slice.metadata?.namespace ?? 'default';
  parsed.serviceKey = `${ns}/${serviceName}`;
  (spec.ports ?? []).forEach((p, pi) => {
    const port = Number(p.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      report.error('InvalidPort', ['ports', pi, 'port'], `${JSON.stringify(p.port)} is not a port (1-65535)`);
      return;
    }
    const list: Endpoint[] = parsed.byPort.get(p.name ?? '') ?? [];
    parsed.byPort.set(p.name ?? '', list);
    (spec.endpoints ?? []).forEach((e, ei) => {
      if (e.conditions?.ready === false) return;
      const address = e.addresses?.[0];
      if (!address || isIP(address) === 0) {
        report.error(
          'InvalidAddress',
          ['endpoints', ei, 'addresses', 0],
          `${JSON.stringify(address)} is not an IP address`,
        );
        return;
      }
      const ref = e.targetRef;
      const pod =
        (ref?.kind === 'Pod' && ref.name ? pods.get(`${ref.namespace ?? ns}/${ref.name}`) : undefined) ??
        pods.get(`${ns}/ip/${address}`);
      list.push(pod ? { address, port, ...pod } : { address, port });
    });
  });
  for (const [name, list] of parsed.byPort) parsed.byPort.set(name, dedupeSorted(list));
  return parsed;
}

/**
 * A Service with one slice (the usual case) gets that slice's parsed map itself, the same object for as
 * long as the slice is. Several slices are merged; `previous` (the last build's index) then lets
 * unchanged merged lists keep their identity too.
 */
export function indexEndpoints(
  parser: EndpointParser,
  slices: SourcedObject[],
  pods: PodIndex,
  diagnostics: Diagnostic[],
  previous?: EndpointIndex,
): EndpointIndex {
  const index: EndpointIndex = new Map();
  const merged = new Set<string>();
  for (const sourced of slices) {
    const parsed = parser.parseSlice(sourced, pods);
    diagnostics.push(...parsed.diagnostics);
    if (!parsed.serviceKey) continue;
    const known = index.get(parsed.serviceKey);
    if (!known) {
      index.set(parsed.serviceKey, parsed.byPort);
      continue;
    }
    const byPort = merged.has(parsed.serviceKey) ? known : new Map(known);
    merged.add(parsed.serviceKey);
    index.set(parsed.serviceKey, byPort);
    for (const [name, list] of parsed.byPort) byPort.set(name, [...(byPort.get(name) ?? []), ...list]);
  }
  for (const service of merged) {
    const byPort = index.get(service)!;
    const before = previous?.get(service);
    let same = before?.size === byPort.size;
    for (const [name, list] of byPort) {
      const sorted = dedupeSorted(list);
      const old = before?.get(name);
      const kept = old && old.length === sorted.length && old.every((e, i) => e === sorted[i]) ? old : sorted;
      byPort.set(name, kept);
      same &&= kept === old;
    }
    if (same) index.set(service, before!);
  }
  return index;
}

function dedupeSorted(list: Endpoint[]): Endpoint[] {
  // Most lists come sorted and unique already (one slice, as the API server orders it): kept as they are.
  if (list.every((e, i) => i === 0 || compareEndpoints(list[i - 1]!, e) < 0)) return list;
  const seen = new Map<string, Endpoint>();
  for (const e of list) seen.set(`${e.address}|${e.port}`, e);
  return [...seen.values()].sort(compareEndpoints);
}

function compareEndpoints(a: Endpoint, b: Endpoint): number {
  return a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1;
}
