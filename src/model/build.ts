// objects -> tunnels + diagnostics. Pure: the same input (and previous model) always gives the same
// output, sorted. Incremental underneath, in a ModelBuilder (one per pipeline): what was built from a
// Service object and its endpoint lists is reused while both are the same objects, and unchanged
// tunnels keep their identity, so a change costs about what it touches (see identity.ts, endpoints.ts).
import { isIP } from 'node:net';
import { accessLogOutsideDirs, Annotation, backendAnnotations, parseTunnelSettings } from './annotations.js';
import { Collector } from './collector.js';
import type { Diagnostic } from './diagnostics.js';
import { domainsOf } from './domains.js';
import { EndpointParser, indexEndpoints, type EndpointIndex } from './endpoints.js';
import { keepIdentity } from './identity.js';
import { missingCertificates, mtlsModeOf, servedWithCertificates, servingIdentities, withMtlsDefault } from './mtls.js';
import { buildIdentities, isIdentitySecret } from './secrets.js';
import { isEndpointSlice, isPod, isService, isTCPRoute, refOf, type FieldPath, type SourcedObject } from './objects.js';
import { parseRoute } from './routes.js';
import type { Endpoint, Model, ModelOptions, Tunnel, TunnelSettings } from './tunnel.js';
import { shapeProblem } from './shape.js';
import { checkDnsLabel } from './values.js';

interface ServicePort {
  name?: string;
  port?: unknown;
  protocol?: string;
}

interface ServiceSpec {
  clusterIP?: string;
  ports?: ServicePort[];
}

function tunnelsOfService(
  sourced: SourcedObject,
  options: ModelOptions,
  endpoints: EndpointIndex,
  report: Collector,
): Tunnel[] | undefined {
  const service = sourced.object;
  const shape = shapeProblem(service);
  if (shape) {
    report.error('InvalidObject', shape.path, shape.message);
    return undefined;
  }
  const ref = refOf(service);
  const { settings, errors } = settingsOf(service.metadata?.annotations ?? {});
  for (const e of errors) {
    const known = e.message !== 'is not a tunnel-shim annotation' && !e.message.startsWith('has no effect');
    const path = ['metadata', 'annotations', e.annotation];
    if (known) report.error('InvalidAnnotation', path, e.message);
    else report.warn('UnknownAnnotation', path, e.message);
  }
  if (!settings) return [];
  const mtls = withMtlsDefault(settings, options.mtlsDefault);
  if (mtls.error)
    report.error('InvalidAnnotation', ['metadata', 'annotations', 'tunnel-shim.io/allowed-identities'], mtls.error);
  const outside =
    settings.accessLog === undefined ? undefined : accessLogOutsideDirs(settings.accessLog, options.accessLogDirs);
  if (outside) report.error('InvalidAnnotation', ['metadata', 'annotations', 'tunnel-shim.io/access-log'], outside);
  if (!ref.name) {
    report.error('InvalidObject', ['metadata', 'name'], 'Service has no name');
    return undefined;
  }
  // Name and namespace become the tunnel's authority (the API server checks them; files may not).
  for (const field of ['name', 'namespace'] as const) {
    const problem = checkDnsLabel(ref[field]);
    if (problem) {
      report.error('InvalidObject', ['metadata', field], problem);
      return undefined;
    }
  }
  const spec = (service.spec ?? {}) as ServiceSpec;
  const clusterIP = spec.clusterIP && spec.clusterIP !== 'None' ? spec.clusterIP : undefined;
  if (clusterIP && isIP(clusterIP) === 0)
    report.error('InvalidClusterIP', ['spec', 'clusterIP'], `${JSON.stringify(clusterIP)} is not an IP address`);
  if (!Array.isArray(spec.ports) || spec.ports.length === 0) {
    report.error('NoPorts', ['spec', 'ports'], 'a tunneled Service needs at least one port');
    return undefined;
  }
  if (settings.domains && spec.ports.length > 1) {
    report.error(
      'InvalidAnnotation',
      ['metadata', 'annotations', 'tunnel-shim.io/domains'],
      'names authorities for one port; this Service has several (split it, one Service per port)',
    );
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
      report.warn(
        'UnsupportedProtocol',
        ['spec', 'ports', i, 'protocol'],
        `${p.protocol} ports are not tunneled; only TCP`,
      );
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
      settings: mtls.settings,
      endpoints: endpoints.get(`${ref.namespace}/${ref.name}`)?.get(portName) ?? [],
      origin: sourced.origin,
    });
  });
  return tunnels;
}

// Module-level, yet invisible: a pure parse of an annotations object, which is never modified.
const parsedSettings = new WeakMap<Record<string, string>, ReturnType<typeof parseTunnelSettings>>();

/** Parsed once per annotations object: unchanged Services keep theirs, so their settings keep their identity. */
function settingsOf(annotations: Record<string, string>): ReturnType<typeof parseTunnelSettings> {
  let parsed = parsedSettings.get(annotations);
  if (!parsed) {
    parsed = parseTunnelSettings(annotations);
    parsedSettings.set(annotations, parsed);
  }
  return parsed;
}

// Module-level, yet invisible: `namespace/name` of an object, which is never modified.
const sortKeys = new WeakMap<SourcedObject, string>();

function sortKey(s: SourcedObject): string {
  let key = sortKeys.get(s);
  if (key === undefined) {
    const r = refOf(s.object);
    key = `${r.namespace}/${r.name}`;
    sortKeys.set(s, key);
  }
  return key;
}

/** What one Service object gave, reused while the object and its endpoint lists are the same. */
interface ServiceBuild {
  endpoints?: Map<string, Endpoint[]>;
  tunnels: Tunnel[];
  diagnostics: Diagnostic[];
  failed: boolean;
}

/** What one build leaves for the next to reuse. */
interface BuildState {
  endpoints: EndpointIndex;
  services: Map<SourcedObject, ServiceBuild>;
  /** Per tunnel of a Service build, the tunnel the model got and the parts it was completed with. */
  completed: WeakMap<Tunnel, Completed>;
}

interface Completed {
  split: Tunnel['split'];
  servedBy: Tunnel['servedBy'];
  certified: boolean | undefined;
  tunnel: Tunnel;
}

/** The builds of one pipeline, each from the one before. */
export class ModelBuilder {
  /** The last model and what building it left (per Service object, the endpoint index); replaced by each build. */
  private last?: { model: Model; state: BuildState };
  /** Pods and EndpointSlices parsed so far, kept while the same objects come back (endpoints.ts). */
  private readonly parser = new EndpointParser();

  constructor(private readonly options: ModelOptions) {}

  build(objects: readonly SourcedObject[]): Model {
    this.last = build(objects, this.options, this.last?.model, { state: this.last?.state, parser: this.parser });
    return this.last.model;
  }
}

/**
 * Builds the tunnel model at once, reusing nothing (no object of `previous` is handed back). A Service
 * with an error keeps the tunnels it had in `previous` (with fresh endpoints), so the last good
 * configuration keeps serving; other Services are unaffected.
 */
export function buildModel(objects: readonly SourcedObject[], options: ModelOptions, previous?: Model): Model {
  return build(objects, options, previous).model;
}

/** `incremental`: what the last build left, and a parser that remembers; unchanged tunnels then keep their identity. */
function build(
  objects: readonly SourcedObject[],
  options: ModelOptions,
  previous: Model | undefined,
  incremental?: { state?: BuildState; parser: EndpointParser },
): { model: Model; state: BuildState } {
  const diagnostics: Diagnostic[] = [];
  const reusable = incremental?.state;
  const parser = incremental?.parser ?? new EndpointParser();
  const services = objects
    .filter((o) => isService(o.object))
    .map((o) => ({ o, key: sortKey(o) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const pods = parser.indexPods(objects.filter((o) => isPod(o.object) && readable(o, diagnostics)));
  const slices = objects.filter((o) => isEndpointSlice(o.object) && readable(o, diagnostics));
  const endpoints = indexEndpoints(parser, slices, pods, diagnostics, reusable?.endpoints);
  const routes = objects.filter((o) => isTCPRoute(o.object) && readable(o, diagnostics));
  let previousByService: Map<string, Tunnel[]> | undefined;

  const state: BuildState = { endpoints, services: new Map(), completed: new WeakMap() };
  const tunnels: Tunnel[] = [];
  const seenServices = new Set<string>();
  for (const { o: sourced, key } of services) {
    if (seenServices.has(key)) {
      const ref = refOf(sourced.object);
      const report = new Collector(sourced);
      report.error(
        'DuplicateObject',
        ['metadata', 'name'],
        `Service ${ref.namespace}/${ref.name} is defined more than once; the first one is used`,
      );
      diagnostics.push(...report.diagnostics);
      continue;
    }
    seenServices.add(key);
    const serviceEndpoints = endpoints.get(key);
    let built = reusable?.services.get(sourced);
    if (!built || built.endpoints !== serviceEndpoints) {
      const report = new Collector(sourced);
      const own = tunnelsOfService(sourced, options, endpoints, report) ?? [];
      built = {
        endpoints: serviceEndpoints,
        tunnels: own,
        diagnostics: report.diagnostics,
        failed: report.diagnostics.some((d) => d.severity === 'error'),
      };
    }
    state.services.set(sourced, built);
    diagnostics.push(...built.diagnostics);
    if (!built.failed) {
      tunnels.push(...built.tunnels);
      continue;
    }
    previousByService ??= tunnelsByService(previous);
    const kept = previousByService.get(key);
    if (!kept) continue;
    diagnostics.push(keptLastGood(sourced));
    tunnels.push(...kept.map((t) => ({ ...t, split: undefined, endpoints: serviceEndpoints?.get(t.portName) ?? [] })));
  }
  const rejected = new Set<Tunnel>();
  const readableServices = services.map((s) => s.o).filter((o) => !shapeProblem(o.object));
  rejectDuplicateAddresses(tunnels, readableServices, previous, rejected, diagnostics);
  rejectDuplicateDomains(tunnels, rejected, diagnostics);
  const { splits, created } = applyRoutes(routes, tunnels, rejected, readableServices, endpoints, options, diagnostics);
  const previousByKey = new Map((previous?.tunnels ?? []).map((t) => [t.key, t]));
  const out: Tunnel[] = [];
  const trustDomain = options.trustDomain ?? 'cluster.local';
  const tlsDiagnostics: Diagnostic[] = [];
  const tls = modelTls(objects, options, previous, tlsDiagnostics);
  for (const t of [...tunnels, ...created]) {
    if (rejected.has(t)) continue;
    const split = splits.get(t);
    const mode = mtlsModeOf(t);
    const servedBy = mode === 'disable' ? undefined : servingIdentities(t, trustDomain);
    const certified =
      (mode === 'auto' && servedBy && servedWithCertificates(servedBy, tls.identities, Boolean(options.externalSds))) ||
      undefined;
    // The same tunnel completed with the same parts as last time: the same object, without comparing
    // its fields again (1,000 unchanged tunnels per endpoint change).
    const last = reusable?.completed.get(t);
    if (last && last.split === split && last.certified === certified && sameStrings(last.servedBy, servedBy)) {
      state.completed.set(t, last);
      out.push(last.tunnel);
      continue;
    }
    const withParts = split || servedBy || certified ? completeTunnel(t, split, servedBy, certified) : t;
    const tunnel = incremental ? keepIdentity(withParts, previousByKey.get(t.key)) : withParts;
    if (incremental) state.completed.set(t, { split, servedBy, certified, tunnel });
    out.push(tunnel);
  }
  diagnostics.push(...tlsDiagnostics);
  if (!options.externalSds) diagnostics.push(...missingCertificates(out, tls.identities));
  return { model: { tunnels: out, diagnostics, tls }, state };
}

function sameStrings(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return a === b || (!!a && !!b && a.length === b.length && a.every((x, i) => x === b[i]));
}

/**
 * `t` with its split and mTLS parts, written as one literal with every field in one order: all tunnels
 * then share a hidden class, where `{ ...t, ...parts }` gave each its own (~340 bytes apiece).
 */
export function completeTunnel(
  t: Tunnel,
  split: Tunnel['split'],
  servedBy: Tunnel['servedBy'],
  servedCertified: Tunnel['servedCertified'],
): Tunnel {
  return {
    key: t.key,
    service: t.service,
    portName: t.portName,
    port: t.port,
    clusterIP: t.clusterIP,
    authority: t.authority,
    settings: t.settings,
    endpoints: t.endpoints,
    origin: t.origin,
    split: split ?? t.split,
    via: t.via,
    servedBy: servedBy ?? t.servedBy,
    servedCertified: servedCertified ?? t.servedCertified,
  };
}

function modelTls(
  objects: readonly SourcedObject[],
  options: ModelOptions,
  previous: Model | undefined,
  diagnostics: Diagnostic[],
) {
  const trustDomain = options.trustDomain ?? 'cluster.local';
  const secrets = objects.filter((o) => isIdentitySecret(o.object));
  const identityOptions = { trustDomain, expiryWarningMs: options.expiryWarningMs };
  const identities = buildIdentities(secrets, identityOptions, previous?.tls?.identities, diagnostics);
  // Unchanged certificates keep the previous object: the rollout stage and cache see no change.
  const last = previous?.tls;
  const same =
    last?.trustDomain === trustDomain &&
    last.identities.size === identities.size &&
    [...identities].every(([id, cert]) => last.identities.get(id) === cert);
  return same ? last : { trustDomain, identities };
}

/** False (with an error naming the field) for an object the model cannot read; it is left out. */
function readable(sourced: SourcedObject, diagnostics: Diagnostic[]): boolean {
  const shape = shapeProblem(sourced.object);
  if (!shape) return true;
  const report = new Collector(sourced);
  report.error('InvalidObject', shape.path, shape.message);
  diagnostics.push(...report.diagnostics);
  return false;
}

function keptLastGood(sourced: SourcedObject): Diagnostic {
  const report = new Collector(sourced);
  report.warn('KeptLastGood', [], 'serving the last good configuration of this Service until the errors are fixed');
  return report.diagnostics[0]!;
}

/** The previous model's own (not TCPRoute-made) tunnels by Service `namespace/name`. */
function tunnelsByService(previous: Model | undefined): Map<string, Tunnel[]> {
  const byService = new Map<string, Tunnel[]>();
  for (const t of previous?.tunnels ?? []) {
    if (t.via) continue;
    const k = `${t.service.namespace}/${t.service.name}`;
    const list = byService.get(k);
    if (list) list.push(t);
    else byService.set(k, [t]);
  }
  return byService;
}

/** Two Services on one clusterIP:port cannot both have a listener: the earlier owner keeps it. */
function rejectDuplicateAddresses(
  tunnels: Tunnel[],
  services: SourcedObject[],
  previous: Model | undefined,
  rejected: Set<Tunnel>,
  diagnostics: Diagnostic[],
) {
  const byAddress = new Map<string, Tunnel | Tunnel[]>();
  let clashes = false;
  for (const t of tunnels) {
    if (!t.clusterIP) continue;
    const address = `${t.clusterIP}:${t.port}`;
    const known = byAddress.get(address);
    if (!known) byAddress.set(address, t);
    else {
      byAddress.set(address, Array.isArray(known) ? [...known, t] : [known, t]);
      clashes = true;
    }
  }
  if (!clashes) return;
  const previousOwner = new Map<string, string>();
  for (const t of previous?.tunnels ?? []) if (t.clusterIP) previousOwner.set(`${t.clusterIP}:${t.port}`, t.key);
  for (const [address, claimants] of byAddress) {
    if (!Array.isArray(claimants)) continue;
    const owner = claimants.find((t) => t.key === previousOwner.get(address)) ?? claimants[0]!;
    for (const t of claimants) {
      if (t === owner) continue;
      rejected.add(t);
      const sourced = services.find((s) => sortKey(s) === `${t.service.namespace}/${t.service.name}`);
      const portIndex = ((sourced?.object.spec as ServiceSpec | undefined)?.ports ?? []).findIndex(
        (p) => Number(p.port) === t.port,
      );
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
function applyRoutes(
  routes: SourcedObject[],
  tunnels: Tunnel[],
  rejected: Set<Tunnel>,
  services: SourcedObject[],
  endpoints: EndpointIndex,
  options: ModelOptions,
  diagnostics: Diagnostic[],
): { splits: Map<Tunnel, Split[]>; created: Tunnel[] } {
  const splits = new Map<Tunnel, Split[]>();
  const created: Tunnel[] = [];
  if (routes.length === 0) return { splits, created };
  const serviceByKey = new Map(services.map((s) => [sortKey(s), s]));
  for (const route of [...routes].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1))) {
    const { attachments, diagnostics: found } = parseRoute(route);
    diagnostics.push(...found);
    const report = new Collector(route);
    attachments.forEach((a, ai) => {
      const parents = tunnels.filter(
        (t) =>
          !rejected.has(t) &&
          t.service.namespace === a.parentNamespace &&
          t.service.name === a.parentName &&
          (a.parentPort === undefined || t.port === a.parentPort),
      );
      if (parents.length === 0) {
        const exists = serviceByKey.has(`${a.parentNamespace}/${a.parentName}`);
        report.error(
          exists ? 'ParentNotTunneled' : 'ParentNotFound',
          ['spec', 'parentRefs', ai],
          exists
            ? `Service ${a.parentNamespace}/${a.parentName}${a.parentPort ? ` port ${a.parentPort}` : ''} is ` +
                `not tunneled (no tunnel-shim.io/tunnel annotation, or no such port)`
            : `Service ${a.parentNamespace}/${a.parentName} does not exist`,
        );
        return;
      }
      for (const parent of parents) {
        if (splits.has(parent)) {
          report.error(
            'ConflictingRoute',
            ['spec', 'parentRefs', ai],
            `${parent.key} is already split by another TCPRoute; this one is ignored for it`,
          );
          continue;
        }
        if (parent.settings.hostname !== undefined) {
          report.warn(
            'HostnameIgnored',
            ['spec', 'parentRefs', ai],
            `${parent.key} has tunnel-shim.io/hostname, but a split names the chosen backend as the authority; ` +
              `the hostname is not used`,
          );
        }
        if (a.backends.length > 0 && a.backends.every((b) => b.weight === 0)) {
          report.warn(
            'ZeroWeights',
            ['spec', 'rules', 0, 'backendRefs'],
            `every backend has weight 0: connections to ${parent.key} are refused`,
          );
        }
        splits.set(
          parent,
          a.backends.map((b) => {
            const backend = backendTunnel(parent, b, serviceByKey, endpoints, options, route, report);
            created.push(backend);
            return { tunnelKey: backend.key, weight: b.weight };
          }),
        );
      }
    });
    diagnostics.push(...report.diagnostics);
  }
  return { splits, created };
}

type Split = NonNullable<Tunnel['split']>[number];

function backendTunnel(
  parent: Tunnel,
  b: { namespace: string; name: string; port: number; path: FieldPath },
  serviceByKey: Map<string, SourcedObject>,
  endpoints: EndpointIndex,
  options: ModelOptions,
  route: SourcedObject,
  report: Collector,
): Tunnel {
  const service = serviceByKey.get(`${b.namespace}/${b.name}`);
  let portName: string | undefined;
  if (!service) {
    report.error(
      'BackendNotFound',
      [...b.path, 'name'],
      `Service ${b.namespace}/${b.name} does not exist; its share of ${parent.key} fails instead of going to ` +
        `the other backends`,
    );
  } else {
    portName =
      ((service.object.spec as ServiceSpec | undefined)?.ports ?? []).find((p) => Number(p.port) === b.port)?.name ??
      undefined;
    const hasPort = ((service.object.spec as ServiceSpec | undefined)?.ports ?? []).some(
      (p) => Number(p.port) === b.port,
    );
    if (!hasPort)
      report.error(
        'BackendPortNotFound',
        [...b.path, 'port'],
        `Service ${b.namespace}/${b.name} has no port ${b.port}; its share fails`,
      );
    else portName ??= '';
  }
  return {
    key: `${parent.key}>${b.name}:${b.port}`,
    service: { kind: 'Service', namespace: b.namespace, name: b.name },
    portName: portName ?? '',
    port: b.port,
    authority: `${b.name}.${b.namespace}.svc.${options.clusterDomain}:${b.port}`,
    settings: { ...parent.settings, ...backendSubset(service, b.path, report) },
    endpoints: portName === undefined ? [] : (endpoints.get(`${b.namespace}/${b.name}`)?.get(portName) ?? []),
    origin: route.origin,
    via: { name: parent.service.name, port: parent.port },
  };
}

/** Envoy NACKs a route configuration with a domain twice: on one port the earlier Service keeps it. */
function rejectDuplicateDomains(tunnels: Tunnel[], rejected: Set<Tunnel>, diagnostics: Diagnostic[]) {
  const owners = new Map<string, Tunnel>();
  for (const t of tunnels) {
    if (rejected.has(t)) continue;
    const keys = domainsOf(t).map((d) => `tunnel ${t.settings.tunnelPort} ${d}`);
    if (t.settings.relayPort !== undefined) keys.push(...domainsOf(t).map((d) => `relay ${t.settings.relayPort} ${d}`));
    const clash = keys.map((k) => [k, owners.get(k)] as const).find(([, o]) => o && o.key !== t.key);
    if (clash) {
      rejected.add(t);
      const owner = clash[1]!;
      diagnostics.push({
        severity: 'error',
        reason: 'DuplicateAuthority',
        object: t.service,
        path: ['metadata', 'annotations', 'tunnel-shim.io/domains'],
        origin: t.origin,
        message:
          `authority ${clash[0].split(' ').slice(2).join(' ')} on ${clash[0].split(' ')[0]} port ` +
          `${clash[0].split(' ')[1]} is already routed to Service ${owner.service.namespace}/${owner.service.name}`,
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
function backendSubset(
  service: SourcedObject | undefined,
  path: FieldPath,
  report: Collector,
): Pick<TunnelSettings, 'metadataMatch' | 'defaultSubset' | 'fallbackPolicy'> {
  const annotations = service?.object.metadata?.annotations ?? {};
  const subset = Object.fromEntries(Object.entries(annotations).filter(([k]) => backendAnnotations.includes(k)));
  if (!service || Object.keys(subset).length === 0)
    return { metadataMatch: undefined, defaultSubset: undefined, fallbackPolicy: undefined };
  // Parsed as if tunneled: only the subset annotations count here.
  const { settings, errors } = parseTunnelSettings({ ...subset, [Annotation.tunnel]: '' });
  if (errors.length > 0) {
    const name = refOf(service.object).name;
    for (const e of errors)
      report.error(
        'InvalidBackendSubset',
        path,
        `Service ${name}: ${e.annotation}: ${e.message}; its share goes to all its endpoints`,
      );
    return { metadataMatch: undefined, defaultSubset: undefined, fallbackPolicy: undefined };
  }
  return {
    metadataMatch: settings?.metadataMatch,
    defaultSubset: settings?.defaultSubset,
    fallbackPolicy: settings?.fallbackPolicy,
  };
}
