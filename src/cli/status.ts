// `tunnel-shim status`: what a running shim sent to each Envoy and what each Envoy did with it, read
// from the shim's admin port (proxy-status style), and one node's resources in a compact form
// (proxy-config style).
import YAML from 'yaml';
import { kindPlural, pushOrder, type ResourceKind } from '../envoy/protos.js';
import { escapeText } from '../escape.js';
import { errorMessage } from '../errors.js';

// Envoy's JSON as the admin serves it (config dumps): read untyped, every field optional-chained.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type EnvoyJson = any;

interface TypeView {
  sentVersion: string | null;
  ackedVersion: string | null;
  status: string;
  lastNack: { message: string; at: string } | null;
  /** NACKs since the type was last ACKed: the last one stays relevant while this is above 0. */
  nacks?: number;
  /** Seconds until NACKed content is sent again (null: no retry scheduled). */
  retryInSeconds?: number | null;
}

/** One node as /debug/nodes reports it. */
export interface NodeStatus {
  id: string;
  role: string;
  /** The ADS variant it speaks. */
  protocol?: 'sotw' | 'delta';
  listenAddress: string | null;
  connectedAt: string;
  types: Partial<Record<ResourceKind, TypeView>>;
  /** Endpoint changes make-before-break holds until this node ACKs them. */
  holding?: { phase: 'announce' | 'withdraw'; tunnel: string; address: string; heldMs: number }[];
}

interface ConfigEntry {
  name: string;
  version: string;
  status: string;
  nack: string | null;
  resource: Record<string, EnvoyJson>;
}

export type NodeConfig = { node: string; role: string; protocol?: 'sotw' | 'delta' } & Record<
  ResourceKind,
  ConfigEntry[]
>;

/** How the table names a protocol. */
const protocolNames = { sotw: 'SotW', delta: 'delta' };
const protocolName = (p: 'sotw' | 'delta' | undefined) => (p ? protocolNames[p] : '?');

export async function adminGet<T>(adminAddress: string, path: string): Promise<T> {
  const url = `http://${adminAddress}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  } catch (err) {
    // fetch's own message is "fetch failed"; the cause says what failed (ECONNREFUSED, a timeout).
    const why = err instanceof Error && err.cause ? String(err.cause) : errorMessage(err);
    throw new Error(
      `cannot reach the shim's admin at ${adminAddress} (${why}); is tunnel-shim serve running there? ` +
        `(--admin-address)`,
    );
  }
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`${url}: ${escapeText(String(body.error ?? res.status))}`);
  return body;
}

// In push order; EXTENSIONS are the connection managers terminators and relays get over ECDS.
const typeColumns: [ResourceKind, string][] = [
  ['cluster', 'CLUSTERS'],
  ['endpoint', 'ENDPOINTS'],
  ['extension', 'EXTENSIONS'],
  ['listener', 'LISTENERS'],
  ['route', 'ROUTES'],
];

/** Columns padded to their widest cell; the last column is not padded. Cells are escaped (escapeText). */
export function table(cells: string[][]): string {
  const rows = cells.map((r) => r.map(escapeText));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
          .join('   ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function typeCell(t: TypeView | undefined): string {
  if (!t) return '-';
  const retry = t.retryInSeconds != null ? `retry in ${t.retryInSeconds}s` : undefined;
  const details = [t.sentVersion?.slice(0, 8), retry].filter(Boolean).join(', ');
  return details ? `${t.status} (${details})` : t.status;
}

export function statusTable(nodes: NodeStatus[]): string {
  if (nodes.length === 0) return 'no Envoy is connected\n';
  const rows = [['NODE', 'ROLE', 'PROTOCOL', ...typeColumns.map(([, h]) => h), 'LAST NACK']];
  for (const n of nodes) {
    // A NACK stays shown while the node has not accepted the type since (a retry may be in flight).
    const unanswered = (t: TypeView | undefined) => t?.lastNack && (t.status === 'NACKED' || (t.nacks ?? 0) > 0);
    const nacks = pushOrder.flatMap((k) => (unanswered(n.types[k]) ? [`${k}: ${n.types[k]!.lastNack!.message}`] : []));
    const cells = typeColumns.map(([k]) => typeCell(n.types[k]));
    rows.push([n.id, n.role, protocolName(n.protocol), ...cells, nacks.join('; ') || '-']);
  }
  const holds = nodes.flatMap((n) => (n.holding ?? []).map((h) => holdLine(n.id, h)));
  return table(rows) + (holds.length > 0 ? `\nHELD (make-before-break)\n${holds.join('\n')}\n` : '');
}

function holdLine(node: string, h: NonNullable<NodeStatus['holding']>[number]): string {
  const what = h.phase === 'announce' ? 'not yet announced to originators' : 'not yet removed from terminators';
  return `  ${h.tunnel} ${h.address}: ${what}, held ${(h.heldMs / 1000).toFixed(1)} s for ${node}'s ACK`;
}

const address = (a: EnvoyJson) =>
  a?.socket_address ? `${a.socket_address.address}:${a.socket_address.port_value}` : '?';
const filterShortName = (name: string) => name.replace(/^envoy\.filters\.network\./, '');

/** A listener row; a filter served over ECDS is shown as the config it was served (`discovered`). */
function listenerRow(e: ConfigEntry, discovered: Map<string, EnvoyJson>): string[] {
  const l = e.resource;
  const chains: EnvoyJson[] = [...(l.filter_chains ?? []), ...(l.default_filter_chain ? [l.default_filter_chain] : [])];
  const details = chains.map((chain) => {
    const match = chain.filter_chain_match?.prefix_ranges
      ?.map((p: EnvoyJson) => `${p.address_prefix}/${p.prefix_len}`)
      .join(',');
    const filters = (chain.filters ?? []).map((f: EnvoyJson) => {
      const c = (f.config_discovery ? discovered.get(f.name)?.typed_config : f.typed_config) ?? {};
      const label = f.config_discovery ? `ecds ${f.name}` : filterShortName(f.name);
      const tunnel = c.tunneling_config;
      if (tunnel) return `${label} -> ${c.cluster} (${tunnel.use_post ? 'POST' : 'CONNECT'} ${tunnel.hostname})`;
      if (c.rds) return `${label} -> route ${c.rds.route_config_name}`;
      return label;
    });
    return `${match ? `[${match}] ` : chain.name === 'default' ? '[default] ' : ''}${filters.join(', ')}`;
  });
  return [e.name, address(l.address), details.join('; '), e.status];
}

function routeRows(e: ConfigEntry): string[][] {
  const hosts: EnvoyJson[] = e.resource.virtual_hosts ?? [];
  if (hosts.length === 0) return [[e.name, '(no virtual hosts: every authority gets 404)', '-', e.status]];
  return hosts.map((h) => [
    e.name,
    (h.domains ?? []).join(','),
    (h.routes ?? [])
      .map(
        (r: EnvoyJson) =>
          `${r.match?.connect_matcher ? 'CONNECT' : JSON.stringify(r.match)} -> ${r.route?.cluster ?? '?'}`,
      )
      .join('; '),
    e.status,
  ]);
}

function clusterRow(e: ConfigEntry): string[] {
  const c = e.resource;
  const http =
    c.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']
      ?.explicit_http_config;
  const protocol = http?.http2_protocol_options ? 'HTTP/2' : http?.http_protocol_options ? 'HTTP/1.1' : 'TCP';
  return [e.name, c.type ?? 'STATIC', c.lb_policy ?? 'ROUND_ROBIN', protocol, e.status];
}

function endpointRows(e: ConfigEntry): string[][] {
  const hosts = (e.resource.endpoints ?? []).flatMap((l: EnvoyJson) =>
    (l.lb_endpoints ?? []).map((x: EnvoyJson) => address(x.endpoint?.address)),
  );
  return [[e.name, hosts.join(', ') || '(none)', e.status]];
}

/** One node's resources, one line each, like `istioctl proxy-config all`. */
export function nodeSummary(config: NodeConfig): string {
  const discovered = new Map((config.extension ?? []).map((e) => [e.name, e.resource]));
  const nackLines = pushOrder.flatMap((k) =>
    config[k].filter((e) => e.nack).map((e) => `  ${k} ${escapeText(e.name)}: ${escapeText(e.nack!)}`),
  );
  const sections = [
    `NODE ${escapeText(config.node)} (${escapeText(config.role)}, ${protocolName(config.protocol)})\n`,
    table([
      ['LISTENER', 'ADDRESS', 'FILTER CHAINS', 'STATUS'],
      ...config.listener.map((l) => listenerRow(l, discovered)),
    ]),
    table([['ROUTE', 'DOMAINS', 'MATCH -> CLUSTER', 'STATUS'], ...config.route.flatMap(routeRows)]),
    table([['CLUSTER', 'TYPE', 'LB', 'PROTOCOL', 'STATUS'], ...config.cluster.map(clusterRow)]),
    table([
      ['ENDPOINTS OF', 'ADDRESSES', 'STATUS'],
      ...config.endpoint.flatMap(endpointRows),
      // STATIC clusters carry their endpoints inline: shown too, so every destination is listed.
      ...config.cluster
        .filter((c) => c.resource.load_assignment)
        .flatMap((c) => endpointRows({ ...c, name: `${c.name} (inline)`, resource: c.resource.load_assignment })),
    ]),
  ];
  if (nackLines.length > 0) sections.push(`NACKED\n${nackLines.join('\n')}\n`);
  return sections.join('\n');
}

/** The full resources (as served) for --output yaml|json. */
export function nodeResources(config: NodeConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { node: config.node, role: config.role, protocol: config.protocol };
  for (const kind of pushOrder) out[kindPlural[kind]] = (config[kind] ?? []).map((e) => e.resource);
  return out;
}

export function formatData(data: unknown, output: 'json' | 'yaml'): string {
  return output === 'json'
    ? `${JSON.stringify(data, null, 2)}\n`
    : YAML.stringify(data, { aliasDuplicateObjects: false });
}
