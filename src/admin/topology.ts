// The live topology page's data: one compact entry per tunnel, per connected node and per diagnostic.
// The page derives the edges itself (which originators, relays and terminators serve a Service), so
// 1,000 Services and 1,000 Envoys stay one entry each instead of a million edges.
import { formatDiagnostic } from '../model/diagnostics.js';
import type { Tunnel } from '../model/tunnel.js';
import type { Pipeline } from '../pipeline.js';
import { reachesEveryTerminator } from '../translate/scope.js';
import type { XdsServer } from '../xds/server.js';
import { byNodeId, type StreamStatus } from '../xds/stream-status.js';

/** A NACK message is the client's text: the page shows this much of it (the rest is in /debug/nodes). */
export const maxNackChars = 4096;

export interface TopologyService {
  key: string;
  namespace: string;
  name: string;
  port: number;
  authority: string;
  mode: string;
  placement: string;
  tunnelPort: number;
  relayPort: number | null;
  /** Each ready endpoint (the page matches bound terminators on `address`). */
  endpoints: { address: string; port: number }[];
  /** TCPRoute split: backend tunnel keys and weights. */
  split: { key: string; weight: number }[] | null;
  /** Set on a TCPRoute backend: the parent Service port it is reached through. */
  via: string | null;
  /** Every terminator serves it, whatever address it is bound to. */
  everyTerminator: boolean;
}

export interface TopologyNode {
  id: string;
  role: string;
  listenAddress: string | null;
  protocol: string;
  connectedAt: string;
  types: Record<string, { status: string; version: string | null; nack: { message: string; at: string } | null }>;
}

export interface TopologyDiagnostic {
  severity: string;
  reason: string;
  object: { kind: string; namespace: string; name: string };
  text: string;
}

export function topologyServices(tunnels: readonly Tunnel[]): TopologyService[] {
  return tunnels.map((t) => ({
    key: t.key,
    namespace: t.service.namespace,
    name: t.service.name,
    port: t.port,
    authority: t.authority,
    mode: t.settings.mode,
    placement: t.settings.placement,
    tunnelPort: t.settings.tunnelPort,
    relayPort: t.settings.relayPort ?? null,
    endpoints: t.endpoints.map((e) => ({ address: e.address, port: e.port })),
    split: t.split ? t.split.map((s) => ({ key: s.tunnelKey, weight: s.weight })) : null,
    via: t.via ? `${t.via.name}:${t.via.port}` : null,
    everyTerminator: reachesEveryTerminator(t),
  }));
}

export function topologyNode(stream: StreamStatus): TopologyNode {
  const types: TopologyNode['types'] = {};
  for (const t of stream.types()) {
    const nack = t.lastNack ? { message: t.lastNack.message.slice(0, maxNackChars), at: t.lastNack.at } : null;
    types[t.kind] = { status: t.status, version: t.sentVersion ?? null, nack };
  }
  const view = stream.node.view;
  return {
    id: stream.node.id,
    role: view.role,
    listenAddress: view.listenAddress ?? null,
    protocol: stream.protocol,
    connectedAt: stream.connectedAt.toISOString(),
    types,
  };
}

export interface TopologySources {
  pipeline: Pipeline;
  xds: XdsServer;
}

/** The three parts of the page's state, each as the JSON text the page receives. */
export function topologyParts(deps: TopologySources): { services: string; nodes: string; diagnostics: string } {
  const nodes = deps.xds.statuses().sort(byNodeId).map(topologyNode);
  const diagnostics: TopologyDiagnostic[] = deps.pipeline
    .diagnostics()
    .map((d) => ({ severity: d.severity, reason: d.reason, object: d.object, text: formatDiagnostic(d) }));
  return {
    services: JSON.stringify(topologyServices(deps.pipeline.model?.tunnels ?? [])),
    nodes: JSON.stringify(nodes),
    diagnostics: JSON.stringify(diagnostics),
  };
}
