// objects -> tunnels + diagnostics. Pure: the same input always gives the same output, sorted.
import { isIP } from 'node:net';
import { accessLogOutsideDirs, Annotation, backendAnnotations, parseTunnelSettings } from './annotations.js';
import { isTCPRoute, parseRoute } from './routes.js';
import type { Diagnostic } from './diagnostics.js';
import { refKey, refOf, type FieldPath, type KubeObject, type SourcedObject } from './objects.js';
import type { Endpoint, Model, ModelOptions, Tunnel, TunnelSettings } from './tunnel.js';

interface ServicePort {
  name?: string;
  port?: unknown;
  protocol?: string;
}

interface ServiceSpec {
  clusterIP?: string;
  ports?: ServicePort[];
}

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

function isService(o: KubeObject) {
  return o.kind === 'Service' && (o.apiVersion ?? 'v1') === 'v1';
}

function isPod(o: KubeObject) {
  return o.kind === 'Pod' && (o.apiVersion ?? 'v1') === 'v1';
}

/** Pod labels by `namespace/name` and by `namespace/ip`: what metadata-match selects endpoints by. */
type PodIndex = Map<string, Record<string, string>>;

function indexPods(pods: SourcedObject[]): PodIndex {
  const index: PodIndex = new Map();
  for (const { object } of pods) {
    const ns = object.metadata?.namespace ?? 'default';
    const labels = object.metadata?.labels ?? {};
    if (object.metadata?.name) index.set(`${ns}/${object.metadata.name}`, labels);
    const status = (object.status ?? {}) as { podIP?: string; podIPs?: { ip?: string }[] };
    for (const ip of [status.podIP, ...(status.podIPs ?? []).map((p) => p.ip)]) if (ip) index.set(`${ns}/ip/${ip}`, labels);
  }
  return index;
}

function isEndpointSlice(o: KubeObject) {
  return o.kind === 'EndpointSlice' && (o.apiVersion ?? '').startsWith('discovery.k8s.io/');
}

class Collector {
  readonly diagnostics: Diagnostic[] = [];
  constructor(private readonly current: SourcedObject) {}
  error(reason: string, path: FieldPath, message: string) {
    this.diagnostics.push({ severity: 'error', reason, object: refOf(this.current.object), path, message, origin: this.current.origin });
  }
  warn(reason: string, path: FieldPath, message: string) {
    this.diagnostics.push({ severity: 'warning', reason, object: refOf(this.current.object), path, message, origin: this.current.origin });
  }
}

/** Ready endpoints per Service (`namespace/name`) and per port name. */
type EndpointIndex = Map<string, Map<string, Endpoint[]>>;

function indexEndpoints(slices: SourcedObject[], pods: PodIndex, diagnostics: Diagnostic[]): EndpointIndex {
  const index: EndpointIndex = new Map();
  for (const sourced of slices) {
    const slice = sourced.object;
    const report = new Collector(sourced);
    const serviceName = slice.metadata?.labels?.[serviceNameLabel];
    if (!serviceName) {
      report.warn('MissingServiceName', ['metadata', 'labels', serviceNameLabel], 'EndpointSlice has no service-name label; ignored');
      diagnostics.push(...report.diagnostics);
      continue;
    }
    const spec = slice as KubeObject & SliceSpec;
    if (spec.addressType === 'FQDN') {
      report.warn('UnsupportedAddressType', ['addressType'], 'FQDN endpoints are not tunneled');
      diagnostics.push(...report.diagnostics);
      continue;
    }
    const serviceKey = `${slice.metadata?.namespace ?? 'default'}/${serviceName}`;
    const byPort = index.get(serviceKey) ?? new Map<string, Endpoint[]>();
    index.set(serviceKey, byPort);
    (spec.ports ?? []).forEach((p, pi) => {
      const port = Number(p.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        report.error('InvalidPort', ['ports', pi, 'port'], `${JSON.stringify(p.port)} is not a port (1-65535)`);
        return;
      }
      const list = byPort.get(p.name ?? '') ?? [];
      byPort.set(p.name ?? '', list);
      (spec.endpoints ?? []).forEach((e, ei) => {
        if (e.conditions?.ready === false) return;
        const address = e.addresses?.[0];
        if (!address || isIP(address) === 0) {
          report.error('InvalidAddress', ['endpoints', ei, 'addresses', 0], `${JSON.stringify(address)} is not an IP address`);
          return;
        }
        const ns = slice.metadata?.namespace ?? 'default';
        const ref = e.targetRef;
        const labels = (ref?.kind === 'Pod' && ref.name ? pods.get(`${ref.namespace ?? ns}/${ref.name}`) : undefined) ?? pods.get(`${ns}/ip/${address}`);
        list.push(labels ? { address, port, labels } : { address, port });
      });
    });
    diagnostics.push(...report.diagnostics);
  }
  for (const byPort of index.values()) {
    for (const [name, list] of byPort) byPort.set(name, dedupeSorted(list));
  }
  return index;
}

function dedupeSorted(list: Endpoint[]): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const e of list) seen.set(`${e.address}|${e.port}`, e);
  return [...seen.values()].sort((a, b) => (a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1));
}

function tunnelsOfService(sourced: SourcedObject, options: ModelOptions, endpoints: EndpointIndex, report: Collector): Tunnel[] | undefined {
  const service = sourced.object;
  const ref = refOf(service);
  const annotations = service.metadata?.annotations ?? {};
  const { settings, errors } = parseTunnelSettings(annotations);
  for (const e of errors) {
    const known = e.message !== 'is not a tunnel-shim annotation' && !e.message.startsWith('has no effect');
    const path = ['metadata', 'annotations', e.annotation];
    if (known) report.error('InvalidAnnotation', path, e.message);
    else report.warn('UnknownAnnotation', path, e.message);
  }
  if (!settings) return [];
  const outside = settings.accessLog === undefined ? undefined : accessLogOutsideDirs(settings.accessLog, options.accessLogDirs);
  if (outside) report.error('InvalidAnnotation', ['metadata', 'annotations', 'tunnel-shim.io/access-log'], outside);
  if (!ref.name) {
    report.error('InvalidObject', ['metadata', 'name'], 'Service has no name');
    return undefined;
  }
  const spec = (service.spec ?? {}) as ServiceSpec;
  const clusterIP = spec.clusterIP && spec.clusterIP !== 'None' ? spec.clusterIP : undefined;
  if (clusterIP && isIP(clusterIP) === 0) report.error('InvalidClusterIP', ['spec', 'clusterIP'], `${JSON.stringify(clusterIP)} is not an IP address`);
  if (!Array.isArray(spec.ports) || spec.ports.length === 0) {
    report.error('NoPorts', ['spec', 'ports'], 'a tunneled Service needs at least one port');
    return undefined;
  }
  if (settings.domains && spec.ports.length > 1) {
    report.error('InvalidAnnotation', ['metadata', 'annotations', 'tunnel-shim.io/domains'], 'names authorities for one port; this Service has several (split it, one Service per port)');
    return undefined;
  }
  const tunnels: Tunnel[] = [];
  spec.ports.forEach((p, i) => {
    const port = Number(p.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      report.error('InvalidPort', ['spec', 'ports', i, 'port'], `${JSON.stringify(p.port)} is not a port (1-65535)`);
      return;
    }
    if (p.protocol && p.protocol !== 'TCP') {
      report.warn('UnsupportedProtocol', ['spec', 'ports', i, 'protocol'], `${p.protocol} ports are not tunneled; only TCP`);
      return;
    }
    const portName = p.name ?? '';
    tunnels.push({
      key: `${ref.namespace}/${ref.name}:${port}`,
      service: ref,
      portName,
      port,
      clusterIP,
      authority: `${ref.name}.${ref.namespace}.svc.${options.clusterDomain}:${port}`,
      settings,
      endpoints: endpoints.get(`${ref.namespace}/${ref.name}`)?.get(portName) ?? [],
      origin: sourced.origin,
    });
  });
  return tunnels;
}

function sortKey(s: SourcedObject): string {
  const r = refOf(s.object);
  return `${r.namespace}/${r.name}`;
}

/**
 * Builds the tunnel model. A Service with an error keeps the tunnels it had in `previous` (with fresh
 * endpoints), so the last good configuration keeps serving; other Services are unaffected.
 */
export function buildModel(objects: readonly SourcedObject[], options: ModelOptions, previous?: Model): Model {
  const diagnostics: Diagnostic[] = [];
  const services = objects.filter((o) => isService(o.object)).sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  const pods = indexPods(objects.filter((o) => isPod(o.object)));
  const endpoints = indexEndpoints(objects.filter((o) => isEndpointSlice(o.object)), pods, diagnostics);
  const previousByService = new Map<string, Tunnel[]>();
  for (const t of previous?.tunnels ?? []) {
    if (t.via) continue;
    const k = refKey(t.service);
    previousByService.set(k, [...(previousByService.get(k) ?? []), t]);
  }

  const tunnels: Marked[] = [];
  const seenServices = new Set<string>();
  for (const sourced of services) {
    const report = new Collector(sourced);
    const ref = refOf(sourced.object);
    if (seenServices.has(refKey(ref))) {
      report.error('DuplicateObject', ['metadata', 'name'], `Service ${ref.namespace}/${ref.name} is defined more than once; the first one is used`);
      diagnostics.push(...report.diagnostics);
      continue;
    }
    seenServices.add(refKey(ref));
    const own = tunnelsOfService(sourced, options, endpoints, report) ?? [];
    const failed = report.diagnostics.some((d) => d.severity === 'error');
    const kept = failed ? previousByService.get(refKey(ref)) : undefined;
    if (kept) {
      report.warn('KeptLastGood', [], 'serving the last good configuration of this Service until the errors are fixed');
      tunnels.push(...kept.map((t) => ({ ...t, split: undefined, endpoints: endpoints.get(`${ref.namespace}/${ref.name}`)?.get(t.portName) ?? [] })));
    } else if (!failed) {
      tunnels.push(...own);
    }
    diagnostics.push(...report.diagnostics);
  }
  rejectDuplicateAddresses(tunnels, services, previous, diagnostics);
  rejectDuplicateDomains(tunnels, diagnostics);
  tunnels.push(...applyRoutes(objects.filter((o) => isTCPRoute(o.object)), tunnels, services, endpoints, options, diagnostics));
  return { tunnels: tunnels.filter((t) => !t.rejected).map(stripRejected), diagnostics };
}

type Marked = Tunnel & { rejected?: boolean };

function stripRejected(t: Marked): Tunnel {
  const { rejected: _r, ...rest } = t;
  return rest;
}

/** Two Services on one clusterIP:port cannot both have a listener: the earlier owner keeps it. */
function rejectDuplicateAddresses(tunnels: Marked[], services: SourcedObject[], previous: Model | undefined, diagnostics: Diagnostic[]) {
  const previousOwner = new Map<string, string>();
  for (const t of previous?.tunnels ?? []) if (t.clusterIP) previousOwner.set(`${t.clusterIP}:${t.port}`, t.key);
  const byAddress = new Map<string, Marked[]>();
  for (const t of tunnels) {
    if (!t.clusterIP) continue;
    const address = `${t.clusterIP}:${t.port}`;
    byAddress.set(address, [...(byAddress.get(address) ?? []), t]);
  }
  for (const [address, claimants] of byAddress) {
    if (claimants.length < 2) continue;
    const owner = claimants.find((t) => t.key === previousOwner.get(address)) ?? claimants[0]!;
    for (const t of claimants) {
      if (t === owner) continue;
      t.rejected = true;
      const sourced = services.find((s) => refKey(refOf(s.object)) === refKey(t.service));
      const portIndex = ((sourced?.object.spec as ServiceSpec | undefined)?.ports ?? []).findIndex((p) => Number(p.port) === t.port);
      diagnostics.push({
        severity: 'error',
        reason: 'DuplicateAddress',
        object: t.service,
        path: ['spec', 'ports', portIndex, 'port'],
        message: `${address} is already used by Service ${owner.service.namespace}/${owner.service.name}`,
        origin: t.origin,
      });
    }
  }
}


/**
 * Attaches TCPRoutes to their parent Service ports: the parent gets a weighted split, and each backend
 * becomes a tunnel reached through the parent with the parent's settings. A missing backend keeps its
 * share (those connections fail) rather than silently sending it to the others.
 */
function applyRoutes(routes: SourcedObject[], tunnels: Marked[], services: SourcedObject[], endpoints: EndpointIndex, options: ModelOptions, diagnostics: Diagnostic[]): Tunnel[] {
  const serviceByKey = new Map(services.map((s) => [`${refOf(s.object).namespace}/${refOf(s.object).name}`, s]));
  const created: Tunnel[] = [];
  for (const route of [...routes].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1))) {
    const { attachments, diagnostics: found } = parseRoute(route);
    diagnostics.push(...found);
    const report = new Collector(route);
    attachments.forEach((a, ai) => {
      const parents = tunnels.filter((t) => !t.rejected && t.service.namespace === a.parentNamespace && t.service.name === a.parentName && (a.parentPort === undefined || t.port === a.parentPort));
      if (parents.length === 0) {
        const exists = serviceByKey.has(`${a.parentNamespace}/${a.parentName}`);
        report.error(exists ? 'ParentNotTunneled' : 'ParentNotFound', ['spec', 'parentRefs', ai], exists
          ? `Service ${a.parentNamespace}/${a.parentName}${a.parentPort ? ` port ${a.parentPort}` : ''} is not tunneled (no tunnel-shim.io/tunnel annotation, or no such port)`
          : `Service ${a.parentNamespace}/${a.parentName} does not exist`);
        return;
      }
      for (const parent of parents) {
        if (parent.split) {
          report.error('ConflictingRoute', ['spec', 'parentRefs', ai], `${parent.key} is already split by another TCPRoute; this one is ignored for it`);
          continue;
        }
        if (parent.settings.hostname !== undefined) {
          report.warn('HostnameIgnored', ['spec', 'parentRefs', ai], `${parent.key} has tunnel-shim.io/hostname, but a split names the chosen backend as the authority; the hostname is not used`);
        }
        if (a.backends.length > 0 && a.backends.every((b) => b.weight === 0)) {
          report.warn('ZeroWeights', ['spec', 'rules', 0, 'backendRefs'], `every backend has weight 0: connections to ${parent.key} are refused`);
        }
        parent.split = a.backends.map((b) => {
          const backend = backendTunnel(parent, b, serviceByKey, endpoints, options, route, report);
          created.push(backend);
          return { tunnelKey: backend.key, weight: b.weight };
        });
      }
    });
    diagnostics.push(...report.diagnostics);
  }
  return created;
}

function backendTunnel(parent: Tunnel, b: { namespace: string; name: string; port: number; path: FieldPath }, serviceByKey: Map<string, SourcedObject>, endpoints: EndpointIndex, options: ModelOptions, route: SourcedObject, report: Collector): Tunnel {
  const service = serviceByKey.get(`${b.namespace}/${b.name}`);
  let portName: string | undefined;
  if (!service) {
    report.error('BackendNotFound', [...b.path, 'name'], `Service ${b.namespace}/${b.name} does not exist; its share of ${parent.key} fails instead of going to the other backends`);
  } else {
    portName = ((service.object.spec as ServiceSpec | undefined)?.ports ?? []).find((p) => Number(p.port) === b.port)?.name ?? undefined;
    const hasPort = ((service.object.spec as ServiceSpec | undefined)?.ports ?? []).some((p) => Number(p.port) === b.port);
    if (!hasPort) report.error('BackendPortNotFound', [...b.path, 'port'], `Service ${b.namespace}/${b.name} has no port ${b.port}; its share fails`);
    else portName ??= '';
  }
  return {
    key: `${parent.key}>${b.name}:${b.port}`,
    service: { kind: 'Service', namespace: b.namespace, name: b.name },
    portName: portName ?? '',
    port: b.port,
    authority: `${b.name}.${b.namespace}.svc.${options.clusterDomain}:${b.port}`,
    settings: { ...parent.settings, ...backendSubset(service, b.path, report) },
    endpoints: portName === undefined ? [] : endpoints.get(`${b.namespace}/${b.name}`)?.get(portName) ?? [],
    origin: route.origin,
    via: { name: parent.service.name, port: parent.port },
  };
}

/** The authorities a terminator or relay accepts for a tunnel (one virtual host's domains). */
export function domainsOf(t: Tunnel): string[] {
  // A TCPRoute backend is named by its own authority (the split's hostname reads it from the cluster).
  if (t.via) return [t.authority];
  return t.settings.domains ?? [t.settings.hostname ?? t.authority];
}

/** Envoy NACKs a route configuration with a domain twice: on one port the earlier Service keeps it. */
function rejectDuplicateDomains(tunnels: Marked[], diagnostics: Diagnostic[]) {
  const owners = new Map<string, Marked>();
  for (const t of tunnels) {
    if (t.rejected) continue;
    const keys = domainsOf(t).map((d) => `tunnel ${t.settings.tunnelPort} ${d}`);
    if (t.settings.relayPort !== undefined) keys.push(...domainsOf(t).map((d) => `relay ${t.settings.relayPort} ${d}`));
    const clash = keys.map((k) => [k, owners.get(k)] as const).find(([, o]) => o && o.key !== t.key);
    if (clash) {
      t.rejected = true;
      const owner = clash[1]!;
      diagnostics.push({
        severity: 'error', reason: 'DuplicateAuthority', object: t.service, path: ['metadata', 'annotations', 'tunnel-shim.io/domains'], origin: t.origin,
        message: `authority ${clash[0].split(' ').slice(2).join(' ')} on ${clash[0].split(' ')[0]} port ${clash[0].split(' ')[1]} is already routed to Service ${owner.service.namespace}/${owner.service.name}`,
      });
      continue;
    }
    for (const k of keys) owners.set(k, t);
  }
}

/**
 * A TCPRoute backend rides its parent's tunnel settings, but which of its Pods it reaches is its own:
 * the backend Service's metadata-match (and default subset) becomes its weighted cluster's metadata_match.
 */
function backendSubset(service: SourcedObject | undefined, path: FieldPath, report: Collector): Pick<TunnelSettings, 'metadataMatch' | 'defaultSubset' | 'fallbackPolicy'> {
  const annotations = service?.object.metadata?.annotations ?? {};
  const subset = Object.fromEntries(Object.entries(annotations).filter(([k]) => backendAnnotations.includes(k)));
  if (!service || Object.keys(subset).length === 0) return { metadataMatch: undefined, defaultSubset: undefined, fallbackPolicy: undefined };
  // Parsed as if tunneled: only the subset annotations count here.
  const { settings, errors } = parseTunnelSettings({ ...subset, [Annotation.tunnel]: '' });
  if (errors.length > 0) {
    const name = refOf(service.object).name;
    for (const e of errors) report.error('InvalidBackendSubset', path, `Service ${name}: ${e.annotation}: ${e.message}; its share goes to all its endpoints`);
    return { metadataMatch: undefined, defaultSubset: undefined, fallbackPolicy: undefined };
  }
  return { metadataMatch: settings?.metadataMatch, defaultSubset: settings?.defaultSubset, fallbackPolicy: settings?.fallbackPolicy };
}
