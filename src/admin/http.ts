// Admin HTTP: health, readiness, per-node status and the config each node is served.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { pushOrder } from '../envoy/protos.js';
import { formatDiagnostic } from '../model/diagnostics.js';
import type { Pipeline } from '../pipeline.js';
import type { SnapshotCache } from '../cache/cache.js';
import type { XdsServer } from '../xds/server.js';
import type { Metrics } from '../metrics.js';
import type { RolloutStage } from '../cache/rollout-stage.js';
import type { StreamStatus } from '../xds/stream-status.js';
import { TopologyPage } from './ui.js';

export interface AdminDeps {
  pipeline: Pipeline;
  cache: SnapshotCache;
  xds: XdsServer;
  logger: Logger;
  metrics: Metrics;
  rollout?: RolloutStage;
  /** `serve --insecure-identities`: said in /readyz. */
  insecureIdentities?: boolean;
}

export const insecureIdentitiesWarning =
  'WARNING: --insecure-identities: node identities are believed as claimed in bootstrap metadata, and ' +
  'private keys are served to whoever claims them; for laptops and tests only\n';

const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Why a state-changing request is refused, if it is: loopback is no boundary against a web page in a
 * browser on the same host. Only PUT changes state (a page cannot send it cross-origin without a CORS
 * preflight, which this server never grants), and a request whose Origin is not this server is refused.
 */
export function refuseMutation(req: http.IncomingMessage): { status: number; error: string } | undefined {
  if (req.method !== 'PUT') {
    return { status: 405, error: `${req.method}: state changes need PUT (a browser cannot send it from another site)` };
  }
  const self = `http://${req.headers.host}`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== self) {
    const error = `cross-origin request refused: Origin ${JSON.stringify(origin)} is not this admin server (${self})`;
    return { status: 403, error };
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, error: `cross-site request refused (Sec-Fetch-Site: ${site})` };
  }
  return undefined;
}

/** GET shows the level; PUT ?level=LEVEL changes it for the whole process until the next change. */
function logLevel(req: http.IncomingMessage, res: http.ServerResponse, url: URL, logger: Logger) {
  if (req.method === 'GET') return json(res, 200, { level: logger.level });
  const refused = refuseMutation(req);
  if (refused) return json(res, refused.status, { error: refused.error });
  const level = url.searchParams.get('level') ?? '';
  if (!logLevels.includes(level))
    return json(res, 400, { error: `level ${JSON.stringify(level)}: use one of ${logLevels.join(', ')}` });
  const previous = logger.level;
  logger.level = level;
  logger.info({ level, previous }, 'log level changed from the admin port');
  return json(res, 200, { level, previous });
}

export function nodeStatus(stream: StreamStatus) {
  const types: Record<string, unknown> = {};
  for (const t of stream.types()) {
    types[t.kind] = {
      status: t.status,
      since: t.since?.toISOString() ?? null,
      sentVersion: t.sentVersion ?? null,
      sentNonce: t.sentNonce ?? null,
      sentAt: t.sentAt?.toISOString() ?? null,
      ackedVersion: t.ackedVersion ?? null,
      ackedNonce: t.ackedNonce ?? null,
      pendingNonce: t.pendingNonce ?? null,
      subscribed: t.wildcard ? '*' : [...t.names].sort(),
      lastNack: t.lastNack ?? null,
      nacks: t.nacks,
      retryAt: t.retryAt ? new Date(t.retryAt).toISOString() : null,
      retryInSeconds: t.retryAt ? Math.max(0, Math.ceil((t.retryAt - Date.now()) / 1000)) : null,
    };
  }
  return {
    id: stream.node.id,
    cluster: stream.node.cluster,
    role: stream.node.view.role,
    protocol: stream.protocol,
    listenAddress: stream.node.view.listenAddress ?? null,
    connectedAt: stream.connectedAt.toISOString(),
    held: stream.held,
    types,
  };
}

function json(res: http.ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
}

export function createAdminServer(deps: AdminDeps): http.Server {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (page.handle(req, res, url.pathname)) return;
    switch (url.pathname) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const ready = deps.pipeline.synced && deps.xds.boundPort > 0;
        // Said on every probe, so nobody runs a cluster on believed identities without seeing it.
        const insecure = deps.insecureIdentities ? insecureIdentitiesWarning : '';
        res
          .writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' })
          .end(`${ready ? 'ready' : 'not ready: source not synced'}\n${insecure}`);
        return;
      }
      case '/debug/nodes': {
        // Endpoint changes held back until this node ACKs them (make-before-break).
        const holds = deps.rollout?.holds() ?? [];
        const holding = (s: StreamStatus) =>
          holds.filter((h) => h.waitingFor.includes(s.node.id)).map(({ waitingFor: _, ...h }) => h);
        const nodes = deps.xds.statuses().map((s) => ({ ...nodeStatus(s), holding: holding(s) }));
        json(
          res,
          200,
          nodes.sort((a, b) => (a.id < b.id ? -1 : 1)),
        );
        return;
      }
      case '/debug/config': {
        const id = url.searchParams.get('node');
        const stream = deps.xds.statuses().find((s) => s.node.id === id);
        if (!stream) return json(res, 404, { error: `no connected node ${JSON.stringify(id)}` });
        const { id: node, view } = stream.node;
        const { snapshot } = deps.cache.peek(view);
        const objects = deps.cache.objects(view);
        const out: Record<string, unknown> = { node, role: view.role, protocol: stream.protocol };
        // Each resource with what this node did with it (SYNCED, STALE, NACKED, NOT_SENT).
        const statuses = new Map(stream.resources().map((r) => [`${r.kind}|${r.name}`, r]));
        for (const kind of pushOrder) {
          out[kind] = snapshot
            ? [...snapshot[kind].resources.values()].map((r) => {
                const s = statuses.get(`${kind}|${r.name}`);
                return {
                  name: r.name,
                  version: r.version,
                  status: s?.status ?? 'NOT_SENT',
                  nack: s?.nack?.message ?? null,
                  resource: objects?.[kind].get(r.name),
                };
              })
            : [];
        }
        return json(res, 200, out);
      }
      case '/metrics':
        deps.metrics.text().then(
          (text) => res.writeHead(200, { 'content-type': deps.metrics.contentType() }).end(text),
          (err: Error) => json(res, 500, { error: err.message }),
        );
        return;
      case '/debug/log-level':
        logLevel(req, res, url, deps.logger);
        return;
      case '/debug/diagnostics':
        json(
          res,
          200,
          deps.pipeline
            .diagnostics()
            .map((d) => ({ ...d, origin: undefined, file: d.origin?.file, text: formatDiagnostic(d) })),
        );
        return;
      default:
        json(res, 404, {
          error: 'not found',
          endpoints: [
            '/healthz',
            '/readyz',
            '/metrics',
            '/debug/nodes',
            '/debug/config?node=ID',
            '/debug/diagnostics',
            '/debug/log-level',
          ],
        });
    }
  });
  // The live topology page (/ui): see ui.ts.
  const page = new TopologyPage(deps, server);
  return server;
}

export async function listen(server: http.Server, address: string): Promise<AddressInfo> {
  const { host, port } = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server.address() as AddressInfo;
}

export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new Error(`${address}: expected HOST:PORT`);
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${address}: bad port`);
  return { host, port };
}
