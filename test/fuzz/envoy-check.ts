// A real Envoy's verdict on what the shim serves: the resources of one view, made static (RDS routes
// inlined, EDS clusters given their endpoints as load_assignment), in one bootstrap checked with
// `envoy --mode validate`: Envoy's own parsing, PGV rules and config checks, without binding anything.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Rendered } from '../../src/render.js';
import { envoyBinary } from '../helpers/envoy.js';

type Json = Record<string, any>;

/** Replaces every `rds` reference with the route configuration it names. */
function inlineRoutes(value: unknown, routes: Map<string, Json>): unknown {
  if (Array.isArray(value)) return value.map((v) => inlineRoutes(v, routes));
  if (!value || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'rds')
      out.route_config = routes.get((v as Json).route_config_name) ?? { name: (v as Json).route_config_name };
    else out[k] = inlineRoutes(v, routes);
  }
  return out;
}

/**
 * Envoy opens access log files even in validate mode (as root here): every path is moved under `root`,
 * its folders made, so a fuzzed path can only touch a scratch directory (and /dev/stdout, a socket
 * under execFile, which Envoy cannot open, becomes a file).
 */
function sandboxLogs(value: unknown, root: string): unknown {
  if (Array.isArray(value)) return value.map((v) => sandboxLogs(v, root));
  if (!value || typeof value !== 'object') return value;
  const out: Json = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, sandboxLogs(v, root)]));
  if (String(out['@type']).endsWith('.FileAccessLog') && typeof out.path === 'string') {
    out.path = path.join(root, out.path.replace(/\/$/, '')) + (out.path.endsWith('/') ? '/' : '');
    fs.mkdirSync(path.dirname(out.path), { recursive: true });
  }
  return out;
}

export function staticBootstrap(rendered: Rendered, nodeId: string): Json {
  const r = rendered.resources as Record<string, Json[]>;
  const routes = new Map(r.routes!.map((route) => [route.name as string, route]));
  const endpoints = new Map(r.endpoints!.map((e) => [e.cluster_name as string, e]));
  const clusters = r.clusters!.map((c) => {
    if (c.type !== 'EDS') return c;
    const { eds_cluster_config: _eds, ...rest } = c;
    return {
      ...rest,
      type: 'STATIC',
      load_assignment: endpoints.get(c.name) ?? { cluster_name: c.name, endpoints: [] },
    };
  });
  return {
    node: { id: nodeId, cluster: 'fuzz' },
    static_resources: { listeners: r.listeners!.map((l) => inlineRoutes(l, routes)), clusters },
  };
}

export interface Verdict {
  name: string;
  ok: boolean;
  output: string;
}

/** One `envoy --mode validate` per bootstrap (a batch each), in turn: the machine is shared. */
export async function envoyValidate(bootstraps: { name: string; bootstrap: Json }[]): Promise<Verdict[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'envoy-validate-'));
  try {
    const verdicts: Verdict[] = [];
    for (const { name, bootstrap } of bootstraps) {
      const file = path.join(dir, `${verdicts.length}.json`);
      fs.writeFileSync(file, JSON.stringify(sandboxLogs(bootstrap, path.join(dir, `logs-${verdicts.length}`))));
      const args = ['--mode', 'validate', '-c', file, '-l', 'error', '--disable-hot-restart'];
      const result = await promisify(execFile)(envoyBinary(), args, {
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      }).then(
        (r) => ({ ok: true, output: r.stdout + r.stderr }),
        (e: { stdout?: string; stderr?: string; message: string }) => ({
          ok: false,
          output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message,
        }),
      );
      verdicts.push({ name, ...result });
    }
    return verdicts;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
