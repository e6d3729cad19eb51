// Istio EnvoyFilter patches that build TCP tunnels -> the annotated Services and TCPRoutes that say
// the same to tunnel-shim. Pure: parsed objects in, drafts plus a note for every part that has no
// equivalent (and why), plus errors naming file, object and field.
import YAML from 'yaml';
import { formatDiagnostic, type Diagnostic } from '../model/diagnostics.js';
import { refOf, type FieldPath, type SourcedObject } from '../model/objects.js';
import { dnsLabel, field, parseIstioCluster, serviceOfHost, type ServiceRef, type Yaml } from './istio.js';

export interface ServiceDraft extends ServiceRef {
  /** Clients connect to it through a tunnel (a tcp_proxy target); a split backend alone is not. */
  tunneled: boolean;
  annotations: Record<string, string>;
  /** Lines printed as comments above the Service: parts with no equivalent, and what to do instead. */
  notes: string[];
  from: string[];
}

export interface RouteDraft {
  namespace: string;
  name: string;
  parent: ServiceRef;
  backends: (ServiceRef & { weight: number })[];
  notes: string[];
  from: string[];
}

export interface ImportResult {
  services: ServiceDraft[];
  routes: RouteDraft[];
  /** Notes about a whole EnvoyFilter (workload selector, patches of other kinds). */
  notes: string[];
  errors: string[];
}

const tcpProxyType = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const hcmName = 'envoy.filters.network.http_connection_manager';
const httpOptionsKey = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** A YAML flow map, the form map-valued annotations take (`{env: hema}`). */
function flowMap(map: Record<string, unknown>): string {
  return YAML.stringify(map, { collectionStyle: 'flow' }).trim().replace(/^\{ /, '{').replace(/ \}$/, '}');
}

function durationText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && 'seconds' in value)
    return `${Number((value as { seconds: unknown }).seconds)}s`;
  return undefined;
}

interface Patch {
  index: number;
  applyTo: string;
  operation: string;
  match: Yaml;
  value: Yaml;
}

class Converter {
  readonly services = new Map<string, ServiceDraft>();
  readonly routes: RouteDraft[] = [];
  readonly notes: string[] = [];
  readonly errors: string[] = [];
  private current!: SourcedObject;
  private label = '';
  private clusterAdds = new Map<string, Patch>();
  private listenerAdds = new Map<number, Patch>();

  convert(sourced: SourcedObject): void {
    this.current = sourced;
    const ref = refOf(sourced.object);
    this.label = `EnvoyFilter ${ref.namespace}/${ref.name}`;
    const spec = (sourced.object.spec ?? {}) as Yaml;
    const patches: Patch[] = [];
    const list = field(spec, 'config_patches');
    if (!Array.isArray(list)) return this.error(['spec', 'configPatches'], 'expected a list of patches');
    list.forEach((p: Yaml, index: number) => {
      const applyTo = field(p, 'apply_to');
      const operation = field(p?.patch, 'operation');
      if (typeof applyTo !== 'string') return this.error(['spec', 'configPatches', index, 'applyTo'], 'missing');
      if (typeof operation !== 'string')
        return this.error(['spec', 'configPatches', index, 'patch', 'operation'], 'missing');
      patches.push({ index, applyTo, operation, match: p.match ?? {}, value: p.patch?.value });
    });
    if (field(spec, 'workload_selector') || field(spec, 'target_refs')) {
      this.notes.push(
        `${this.label}: workloadSelector/targetRefs: no equivalent; an Envoy gets tunnels by its role ` +
          `(tunnel-shim bootstrap --role originate|terminate), not by workload labels`,
      );
    }
    this.clusterAdds = new Map(
      patches
        .filter((p) => p.applyTo === 'CLUSTER' && p.operation === 'ADD' && typeof p.value?.name === 'string')
        .map((p) => [p.value.name as string, p]),
    );
    this.listenerAdds = new Map();
    for (const p of patches.filter((x) => x.applyTo === 'LISTENER' && x.operation === 'ADD')) {
      const port = Number(field(field(p.value?.address, 'socket_address'), 'port_value'));
      if (Number.isInteger(port)) this.listenerAdds.set(port, p);
    }
    const used = new Set<Patch>();
    for (const p of patches) {
      if (p.applyTo === 'NETWORK_FILTER') this.networkFilter(p, used);
    }
    for (const p of patches) {
      if (used.has(p) || p.applyTo === 'NETWORK_FILTER') continue;
      if (p.applyTo === 'CLUSTER' && p.operation === 'MERGE') this.clusterMerge(p);
      else if (p.applyTo === 'CLUSTER' && p.operation === 'ADD')
        this.notes.push(`${this.where(p)}: cluster ${p.value.name} is used by no tcp_proxy patch here: not converted`);
      else if (p.applyTo === 'LISTENER' && p.operation === 'ADD')
        this.notes.push(
          `${this.where(p)}: listener ${p.value?.name ?? ''} is used by no tcp_proxy patch here: not converted`,
        );
      else
        this.notes.push(
          `${this.where(p)}: ${p.applyTo} ${p.operation}: no equivalent; tunnel-shim serves only what tunnels ` +
            `need (no other Envoy patching)`,
        );
    }
  }

  private where(p: Patch): string {
    return `${this.label}: spec.configPatches[${p.index}]`;
  }

  private error(path: FieldPath, message: string): void {
    const ref = refOf(this.current.object);
    const d: Diagnostic = {
      severity: 'error',
      reason: 'InvalidEnvoyFilter',
      object: ref,
      path,
      message,
      origin: this.current.origin,
    };
    this.errors.push(formatDiagnostic(d));
  }

  private service(ref: ServiceRef, tunneled = true): ServiceDraft {
    const key = `${ref.namespace}/${ref.name}:${ref.port}`;
    let s = this.services.get(key);
    if (!s) {
      s = { namespace: ref.namespace, name: ref.name, port: ref.port, tunneled, annotations: {}, notes: [], from: [] };
      this.services.set(key, s);
    }
    s.tunneled ||= tunneled;
    if (!s.from.includes(this.label)) s.from.push(this.label);
    return s;
  }

  private set(s: ServiceDraft, name: string, value: string): void {
    const key = `tunnel-shim.io/${name}`;
    const before = s.annotations[key];
    if (before !== undefined && before !== value)
      s.notes.push(`${key} was ${JSON.stringify(before)} from an earlier patch; ${JSON.stringify(value)} wins`);
    s.annotations[key] = value;
  }

  private networkFilter(p: Patch, used: Set<Patch>): void {
    const config = field(p.value, 'typed_config');
    const isTcpProxy =
      p.value?.name === 'envoy.filters.network.tcp_proxy' ||
      field(config, '@type') === tcpProxyType ||
      config?.['@type'] === tcpProxyType;
    if (!isTcpProxy) {
      this.notes.push(
        `${this.where(p)}: NETWORK_FILTER ${p.value?.name ?? '(unnamed)'}: no equivalent; only tcp_proxy ` +
          `patches describe tunnels`,
      );
      return;
    }
    if (!config || typeof config !== 'object')
      return this.error(
        ['spec', 'configPatches', p.index, 'patch', 'value', 'typed_config'],
        'a tcp_proxy patch needs typed_config',
      );
    if (p.operation !== 'REPLACE' && p.operation !== 'MERGE') {
      this.notes.push(`${this.where(p)}: tcp_proxy ${p.operation}: converted as if REPLACE`);
    }
    const listenerPort = field(field(p.match, 'listener'), 'port_number');
    const chainName = field(field(field(p.match, 'listener'), 'filter_chain'), 'name');
    const cluster = field(config, 'cluster');
    const weighted = field(field(config, 'weighted_clusters'), 'clusters');
    let targets: ServiceDraft[];
    if (typeof cluster === 'string') {
      targets = [this.target(cluster, p, used)];
    } else if (Array.isArray(weighted) && weighted.length > 0) {
      targets = [this.weighted(weighted, p, used, typeof chainName === 'string' ? chainName : undefined)];
    } else {
      return this.error(
        ['spec', 'configPatches', p.index, 'patch', 'value', 'typed_config', 'cluster'],
        'a tcp_proxy needs cluster or weighted_clusters.clusters',
      );
    }
    for (const s of targets) {
      if (listenerPort !== undefined && Number(listenerPort) !== s.port) {
        s.notes.push(
          `listener port ${listenerPort}: originators listen on the Service's port (${s.port}) at its clusterIP ` +
            `or --listen-address; give the Service port ${listenerPort} if clients connect there`,
        );
      }
      this.tcpProxySettings(s, config, p);
    }
  }

  /** The Service a tcp_proxy `cluster` reaches, following a tunnel cluster to the listener that ends it. */
  private target(clusterName: string, p: Patch, used: Set<Patch>): ServiceDraft {
    const istio = parseIstioCluster(clusterName);
    if (istio) {
      const s = this.service(istio);
      if (istio.subset) this.subsetNote(s, istio.subset, clusterName);
      return s;
    }
    const added = this.clusterAdds.get(clusterName);
    if (!added) {
      const s = this.service({ namespace: refOf(this.current.object).namespace, name: dnsLabel(clusterName), port: 0 });
      s.notes.push(
        `cluster ${clusterName}: neither an Istio cluster name nor added by this EnvoyFilter; rename this ` +
          `Service to the one that cluster reaches and set its port`,
      );
      return s;
    }
    used.add(added);
    return this.addedCluster(added, used);
  }

  private addedCluster(added: Patch, used: Set<Patch>): ServiceDraft {
    const c = added.value;
    const hosts = (field(field(c, 'load_assignment'), 'endpoints') ?? []).flatMap((l: Yaml) =>
      (field(l, 'lb_endpoints') ?? []).map((e: Yaml) => ({
        socket: field(field(field(e, 'endpoint'), 'address'), 'socket_address'),
        metadata: field(field(e, 'metadata'), 'filter_metadata'),
      })),
    );
    const http = field(field(field(c, 'typed_extension_protocol_options'), httpOptionsKey), 'explicit_http_config');
    if (http) {
      // A tunnel cluster: its endpoint is a listener (often one this EnvoyFilter adds) that ends CONNECT.
      const port = Number(field(hosts[0]?.socket, 'port_value'));
      const listener = this.listenerAdds.get(port);
      const backend = listener ? this.terminatingListener(listener) : undefined;
      if (!listener || !backend) {
        const s = this.service({ namespace: refOf(this.current.object).namespace, name: dnsLabel(c.name), port: 0 });
        s.notes.push(
          `cluster ${c.name} tunnels to port ${port}, which no LISTENER ADD patch here terminates: rename this ` +
            `Service to the backend the terminator reaches, and set its port`,
        );
        this.tunnelProtocol(s, http);
        return s;
      }
      used.add(listener);
      const s = backend;
      this.set(s, 'tunnel-port', String(port));
      this.tunnelProtocol(s, http);
      s.notes.push(
        `cluster ${c.name} and listener ${listener.value.name ?? port}: replaced by the originate and terminate ` +
          `roles (tunnel-shim bootstrap --role originate|terminate); endpoints come from the Service's EndpointSlices`,
      );
      return s;
    }
    const ref = hosts
      .map((h: Yaml) => ({
        service: serviceOfHost(String(field(h.socket, 'address') ?? '')),
        port: Number(field(h.socket, 'port_value')),
      }))
      .find((h: Yaml) => h.service);
    const s = ref
      ? this.service({ ...ref.service, port: ref.port })
      : this.service({
          namespace: refOf(this.current.object).namespace,
          name: dnsLabel(c.name),
          port: Number(field(hosts[0]?.socket, 'port_value')) || 0,
        });
    const distinct = new Set(hosts.map((h: Yaml) => String(field(h.socket, 'address'))));
    const several = distinct.size > 1 ? '; hosts of several Services in one cluster have no equivalent' : '';
    s.notes.push(
      `cluster ${c.name} (${field(c, 'type') ?? 'STATIC'}, ${[...distinct].join(', ')}): endpoints come from ` +
        `the Service's EndpointSlices${several}`,
    );
    this.subsetConfig(s, c, hosts);
    this.lbPolicy(s, c, `cluster ${c.name}`);
    return s;
  }

  /** The backend Service a LISTENER ADD patch that ends CONNECT routes to. */
  private terminatingListener(listener: Patch): ServiceDraft | undefined {
    for (const chain of field(listener.value, 'filter_chains') ?? []) {
      for (const filter of field(chain, 'filters') ?? []) {
        if (filter?.name !== hcmName) continue;
        const hcm = field(filter, 'typed_config');
        const upgrades = (field(hcm, 'upgrade_configs') ?? []).map((u: Yaml) => field(u, 'upgrade_type'));
        if (!upgrades.includes('CONNECT')) continue;
        for (const vhost of field(field(hcm, 'route_config'), 'virtual_hosts') ?? []) {
          for (const route of field(vhost, 'routes') ?? []) {
            const cluster = field(field(route, 'route'), 'cluster');
            const matcher = field(route, 'match');
            if (
              typeof cluster !== 'string' ||
              !(field(matcher, 'connect_matcher') !== undefined || field(matcher, 'prefix') !== undefined)
            )
              continue;
            const istio = parseIstioCluster(cluster);
            if (!istio) continue;
            const s = this.service(istio);
            if (istio.subset) this.subsetNote(s, istio.subset, cluster);
            const domains: string[] = field(vhost, 'domains') ?? [];
            if (domains.includes('*')) {
              s.notes.push(
                `listener ${listener.value.name}: domains ["*"] has no equivalent on purpose: terminators route ` +
                  `only the authorities of known Services (never an open proxy)`,
              );
            } else if (domains.length > 0) {
              this.set(s, 'domains', domains.join(', '));
            }
            return s;
          }
        }
      }
    }
    return undefined;
  }

  private subsetNote(s: ServiceDraft, subset: string, cluster: string): void {
    s.notes.push(
      `subset ${subset} (${cluster}): subsets are Pod labels here: set tunnel-shim.io/metadata-match to the ` +
        `labels of DestinationRule subset ${subset}, e.g. {version: ${subset}}`,
    );
  }

  private tunnelProtocol(s: ServiceDraft, http: Yaml): void {
    if (field(http, 'http_protocol_options') !== undefined && s.annotations['tunnel-shim.io/tunnel'] !== 'h2-post')
      this.set(s, 'tunnel', 'h1');
    else if (field(http, 'http2_protocol_options') === undefined && field(http, 'http_protocol_options') === undefined)
      s.notes.push('explicit_http_config without an HTTP version: tunnels use HTTP/2 (h2)');
  }

  private weighted(clusters: Yaml[], p: Patch, used: Set<Patch>, chainName?: string): ServiceDraft {
    const backends = clusters.map((c: Yaml, i: number) => {
      const name = field(c, 'name');
      const weight = Number(field(c, 'weight') ?? 1);
      const istio = typeof name === 'string' ? parseIstioCluster(name) : undefined;
      let ref: ServiceRef;
      const notes: string[] = [];
      if (istio?.subset) {
        // TCPRoute backends are Services, not subsets: one Service per subset.
        ref = { namespace: istio.namespace, name: `${istio.name}-${dnsLabel(istio.subset)}`, port: istio.port };
        notes.push(
          `backend for subset ${istio.subset} of ${istio.name}: create this Service selecting that subset's ` +
            `Pods (TCPRoute backends are Services)`,
        );
      } else if (istio) {
        ref = istio;
      } else if (typeof name === 'string') {
        ref = this.target(name, p, used);
      } else {
        this.error(
          [
            'spec',
            'configPatches',
            p.index,
            'patch',
            'value',
            'typed_config',
            'weighted_clusters',
            'clusters',
            i,
            'name',
          ],
          'missing',
        );
        ref = { namespace: 'default', name: 'missing', port: 0 };
      }
      // Backends are reached through the parent's tunnel: they need no tunnel annotation of their own.
      const backend = this.service(ref, false);
      backend.notes.push(...notes);
      const match = field(field(field(c, 'metadata_match'), 'filter_metadata'), 'envoy.lb');
      if (match && typeof match === 'object') this.set(backend, 'metadata-match', flowMap(match));
      return { ...ref, weight };
    });
    const parentCluster = chainName ? parseIstioCluster(chainName) : undefined;
    const parentRef = parentCluster ?? { ...backends[0]!, name: backends[0]!.name.replace(/-[^-]+$/, '') };
    const parent = this.service({ namespace: parentRef.namespace, name: parentRef.name, port: parentRef.port });
    const routeNotes = parentCluster
      ? []
      : [
          `the split's parent Service is guessed from the first backend (${parentRef.name}); set parentRefs to ` +
            `the Service clients connect to`,
        ];
    this.routes.push({
      namespace: parent.namespace,
      name: dnsLabel(`${parent.name}-split`),
      parent,
      backends,
      notes: routeNotes,
      from: [this.label],
    });
    return parent;
  }

  private tcpProxySettings(s: ServiceDraft, config: Yaml, p: Patch): void {
    const idle = durationText(field(config, 'idle_timeout'));
    if (idle) this.set(s, 'idle-timeout', idle);
    const attempts = field(config, 'max_connect_attempts');
    if (attempts !== undefined)
      this.set(s, 'max-connect-attempts', String(typeof attempts === 'object' ? attempts.value : attempts));
    const maxDuration = durationText(field(config, 'max_downstream_connection_duration'));
    if (maxDuration) this.set(s, 'max-downstream-connection-duration', maxDuration);
    const match = field(field(field(config, 'metadata_match'), 'filter_metadata'), 'envoy.lb');
    if (match && typeof match === 'object') this.set(s, 'metadata-match', flowMap(match));
    for (const policy of field(config, 'hash_policy') ?? []) {
      if (field(policy, 'source_ip') !== undefined) this.set(s, 'hash-policy', 'source-ip');
      else
        s.notes.push(
          `hash_policy ${JSON.stringify(policy)}: no equivalent; only source-ip affinity ` +
            `(tunnel-shim.io/hash-policy: source-ip)`,
        );
    }
    (field(config, 'access_log') ?? []).forEach((log: Yaml) => this.accessLog(s, log));
    const tunneling = field(config, 'tunneling_config');
    if (tunneling) this.tunneling(s, tunneling);
    if (field(config, 'stat_prefix'))
      s.notes.push(
        `stat_prefix ${field(config, 'stat_prefix')}: not carried over; the shim names stats itself ` +
          `(originate_<namespace>_<name>_<port>)`,
      );
    const known = [
      'cluster',
      'weighted_clusters',
      'stat_prefix',
      'idle_timeout',
      'max_connect_attempts',
      'max_downstream_connection_duration',
      'metadata_match',
      'hash_policy',
      'access_log',
      'tunneling_config',
      '@type',
    ];
    for (const key of Object.keys(config)) {
      const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
      if (!known.includes(snake)) s.notes.push(`${this.where(p)}: tcp_proxy ${key}: no equivalent yet`);
    }
  }

  private accessLog(s: ServiceDraft, log: Yaml): void {
    const config = field(log, 'typed_config') ?? {};
    const path =
      field(config, 'path') ?? (String(field(log, 'name') ?? '').includes('stdout') ? '/dev/stdout' : undefined);
    if (typeof path !== 'string') {
      s.notes.push(
        `access_log ${field(log, 'name') ?? ''}: no equivalent; only file access logs ` +
          `(tunnel-shim.io/access-log: PATH)`,
      );
      return;
    }
    this.set(s, 'access-log', path);
    const format = field(config, 'log_format');
    const text =
      field(format, 'text_format') ??
      field(field(format, 'text_format_source'), 'inline_string') ??
      field(config, 'format');
    if (typeof text === 'string') this.set(s, 'access-log-format', text.replace(/\n+$/, ''));
    else if (field(format, 'json_format'))
      s.notes.push(
        `access_log json_format: no equivalent; give a text format in tunnel-shim.io/access-log-format (the ` +
          `default is the shim's JSON fields)`,
      );
    if (field(log, 'filter')) s.notes.push(`access_log filter: no equivalent; every tunnel connection is logged`);
  }

  private tunneling(s: ServiceDraft, t: Yaml): void {
    const hostname = field(t, 'hostname');
    if (typeof hostname === 'string') {
      this.set(s, 'hostname', hostname);
      if (hostname.includes('%') && !s.annotations['tunnel-shim.io/domains']) {
        s.notes.push(
          `hostname ${hostname} is chosen per connection: add tunnel-shim.io/domains with the authorities ` +
            `terminators may accept (e.g. "api.example.com:443"); the shim refuses to guess, as a catch-all ` +
            `would make an open proxy`,
        );
      }
    }
    if (field(t, 'use_post') === true) this.set(s, 'tunnel', 'h2-post');
    const postPath = field(t, 'post_path');
    if (typeof postPath === 'string') this.set(s, 'post-path', postPath);
    const headers: Record<string, string> = {};
    for (const h of field(t, 'headers_to_add') ?? []) {
      const header = field(h, 'header');
      if (typeof field(header, 'key') === 'string')
        headers[String(field(header, 'key')).toLowerCase()] = String(field(header, 'value') ?? '');
    }
    if (Object.keys(headers).length > 0) this.set(s, 'headers-to-add', flowMap(headers));
    for (const flag of ['propagate_response_headers', 'propagate_response_trailers']) {
      if (field(t, flag) === true) this.set(s, flag.replace(/_/g, '-'), 'true');
    }
  }

  private subsetConfig(s: ServiceDraft, c: Yaml, hosts: { metadata?: Yaml }[]): void {
    const subsets = field(c, 'lb_subset_config');
    if (!subsets) return;
    const defaultSubset = field(subsets, 'default_subset');
    if (defaultSubset && typeof defaultSubset === 'object') this.set(s, 'default-subset', flowMap(defaultSubset));
    const fallback = field(subsets, 'fallback_policy');
    if (typeof fallback === 'string') this.set(s, 'fallback-policy', fallback);
    s.notes.push(
      'lb_subset_config.subset_selectors: not needed; the shim derives them from the ' +
        'tunnel-shim.io/metadata-match keys',
    );
    const labels = hosts.map((h) => field(h.metadata, 'envoy.lb')).filter(Boolean);
    if (labels.length > 0)
      s.notes.push(
        `endpoint metadata ${labels.map((l) => flowMap(l)).join(', ')}: not carried over; label the Pods so ` +
          `instead (the shim reads subsets from Pod labels)`,
      );
  }

  private lbPolicy(s: ServiceDraft, c: Yaml, what: string): void {
    const policy = field(c, 'lb_policy');
    if (typeof policy === 'string' && policy !== 'ROUND_ROBIN') this.set(s, 'lb-policy', policy);
    for (const key of ['ring_hash_lb_config', 'maglev_lb_config', 'least_request_lb_config']) {
      if (field(c, key) !== undefined)
        s.notes.push(`${what} ${key} ${JSON.stringify(field(c, key))}: no equivalent; Envoy's defaults apply`);
    }
  }

  private clusterMerge(p: Patch): void {
    const m = field(p.match, 'cluster');
    const byName = typeof field(m, 'name') === 'string' ? parseIstioCluster(field(m, 'name')) : undefined;
    const host = field(m, 'service');
    const byService =
      typeof host === 'string' && serviceOfHost(host)
        ? { ...serviceOfHost(host)!, port: Number(field(m, 'port_number') ?? 0) }
        : undefined;
    const ref = byName ?? byService;
    if (!ref) {
      this.notes.push(
        `${this.where(p)}: CLUSTER MERGE without a match naming one Service's cluster: no equivalent (settings ` +
          `are per Service)`,
      );
      return;
    }
    const s = this.service(ref);
    this.lbPolicy(s, p.value ?? {}, 'CLUSTER MERGE');
    const other = Object.keys(p.value ?? {}).filter(
      (k) =>
        ![
          'lb_policy',
          'lbPolicy',
          'ring_hash_lb_config',
          'ringHashLbConfig',
          'maglev_lb_config',
          'maglevLbConfig',
          'least_request_lb_config',
          'leastRequestLbConfig',
        ].includes(k),
    );
    for (const key of other) s.notes.push(`CLUSTER MERGE ${key}: no equivalent yet`);
  }
}

export function importEnvoyFilters(objects: readonly SourcedObject[]): ImportResult & { skipped: string[] } {
  const converter = new Converter();
  const skipped: string[] = [];
  for (const sourced of objects) {
    const o = sourced.object;
    if (o.kind === 'EnvoyFilter' && String(o.apiVersion ?? '').startsWith('networking.istio.io/'))
      converter.convert(sourced);
    else
      skipped.push(
        `${o.kind ?? 'object'} ` +
          `${refOf(o).namespace}/${refOf(o).name}${sourced.origin?.file ? ` (${sourced.origin.file})` : ''}: ` +
          `not an EnvoyFilter; skipped`,
      );
  }
  const services = [...converter.services.values()].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name) || a.port - b.port,
  );
  return { services, routes: converter.routes, notes: converter.notes, errors: converter.errors, skipped };
}
