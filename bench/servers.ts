// The control planes under test, behind one interface: the shim (bench/shim-process.ts) and the
// go-control-plane peer (bench/peers/gcp), which is fed the very resources the shim's translator
// renders for each node view, as Envoy JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { buildModel } from '../src/model/build.js';
import type { SourcedObject } from '../src/model/objects.js';
import { defaultModelOptions } from '../src/model/tunnel.js';
import { translate } from '../src/translate/index.js';
import { objectOf } from '../src/translate/resources.js';
import { viewKey, type NodeView } from '../src/translate/view.js';
import { benchDir, Child, pinPrefix, started } from './child.js';
import { addedName, podAddress, podCount, serviceObjects } from './fixtures.js';

export interface Server {
  name: string;
  xds: string;
  pid: number;
  /** Prepares change `i` (Service i's first endpoint moves to `marker`); calling the result makes it happen. */
  prepare(i: number, marker: string): Promise<() => void | Promise<void>>;
  /** Adds Service `added-<k>` (its first endpoint at `marker`) / removes it again. */
  addService?(k: number, marker: string): void | Promise<void>;
  removeService?(k: number): void | Promise<void>;
  /** The shim only: a CPU profile of what happens between the two calls (stop returns its file). */
  profileStart?(): Promise<void>;
  profileStop?(tag: string): Promise<string>;
  /** The peer only: how long its snapshot updates took. */
  peerStats?(): Promise<PeerStats>;
  stop(): Promise<void>;
  /** The shim only: process.memoryUsage() of the server. */
  stats?(): Promise<NodeJS.MemoryUsage>;
  /** The shim only: a full garbage collection, so RSS shows live memory rather than GC timing. */
  collect?(): Promise<void>;
  /** The shim only: writes a heap snapshot, answers its file name. */
  heapSnapshot?(): Promise<string>;
  /** The shim only: sets (replaces) the objects of the named groups (the soak's own Services). */
  set?(updates: Record<string, SourcedObject[]>): void;
  /** The shim only: its /metrics text. */
  metrics?(): Promise<string>;
}

/** Where the shim reads its objects: the in-memory driver (IPC), a file or folder, or the API server. */
export type ShimSource =
  { kind: 'memory' } | { kind: 'file'; path: string } | { kind: 'kubernetes'; kubeconfig: string };

export async function startShim(
  services: number,
  options: { profile?: boolean; source?: ShimSource } = {},
): Promise<Server> {
  const source = options.source ?? { kind: 'memory' };
  const env = { ...process.env };
  if (source.kind === 'file') env.BENCH_SOURCE = `file:${source.path}`;
  if (source.kind === 'kubernetes') Object.assign(env, { BENCH_SOURCE: 'kubernetes', KUBECONFIG: source.kubeconfig });
  const child = new Child('shim-process.ts', {
    part: 'server',
    env,
    execArgv: [
      '--expose-gc',
      ...(process.env.BENCH_SHIM_FLAGS ?? '').split(' ').filter(Boolean),
      ...(options.profile ? ['--cpu-prof', '--cpu-prof-dir=bench/profiles'] : []),
    ],
  });
  await child.next('ready');
  if (source.kind === 'memory') {
    const updates: Record<string, SourcedObject[]> = {};
    for (let i = 0; i < services; i++) updates[`s${i}`] = serviceObjects(i);
    child.send({ cmd: 'set', updates });
  }
  const { xds } = await child.ask({ cmd: 'start' }, 'started', 300_000);
  const set = (updates: Record<string, SourcedObject[]>) => child.send({ cmd: 'set', updates });
  return {
    name: 'shim',
    xds,
    pid: child.pid,
    prepare: async (i, marker) => () => set({ [`s${i}`]: serviceObjects(i, marker) }),
    addService: (k, marker) => set({ [addedName(k)]: serviceObjects(services + k, marker, addedName(k)) }),
    removeService: (k) => set({ [addedName(k)]: [] }),
    stats: async () => (await child.ask({ cmd: 'stats' }, 'stats')).memory,
    collect: async () => void (await child.ask({ cmd: 'gc' }, 'gc')),
    heapSnapshot: async () => (await child.ask({ cmd: 'heap' }, 'heap', 300_000)).file,
    set,
    metrics: async () => (await child.ask({ cmd: 'metrics' }, 'metrics')).text,
    profileStart: async () => void (await child.ask({ cmd: 'profile-start' }, 'profiling')),
    profileStop: async (tag) => (await child.ask({ cmd: 'profile-stop', tag }, 'profiled', 60_000)).file,
    stop: async () => {
      child.send({ cmd: 'stop' });
      await new Promise((r) => child.process.once('exit', r));
    },
  };
}

export const peerBinary = path.join(benchDir, 'peers', 'gcp', 'gcp-peer');

const plural = { listener: 'listeners', route: 'routes', cluster: 'clusters', endpoint: 'endpoints' } as const;

/** A snapshot POST the peer has not answered in this long fails the step (fetch's own limit is 300 s). */
const postTimeoutMs = 60_000;

/** What the peer reports about applying snapshots (bench/peers/gcp/main.go, GET /stats). */
export interface PeerStats {
  posts: number;
  waitMaxMs: number;
  parseMaxMs: number;
  applyMaxMs: number;
  parseSumMs: number;
  applySumMs: number;
}

/** go-control-plane with its snapshot cache or a LinearCache per view and type (`-cache`). */
export async function startPeer(services: number, cache: 'snapshot' | 'linear'): Promise<Server> {
  const [command, ...args] = [...pinPrefix('server'), peerBinary, '-cache', cache];
  const proc: ChildProcess = spawn(command!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  const addresses = await new Promise<{ xds: string; control: string }>((resolve, reject) => {
    proc.stdout!.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]!)));
    proc.once('exit', (code) => reject(new Error(`gcp-peer exited (${code}) before it listened`)));
  });
  const objects = new Map<string, SourcedObject[]>();
  for (let i = 0; i < services; i++) objects.set(`s${i}`, serviceObjects(i));
  const views: NodeView[] = [{ role: 'originate', listenAddress: '127.0.0.1' }];
  for (let p = 0; p < podCount; p++) views.push({ role: 'terminate', listenAddress: podAddress(p) });
  const body = (view: NodeView) => {
    const model = buildModel([...objects.values()].flat(), defaultModelOptions);
    const { resources } = translate(model, view);
    const out: Record<string, unknown> = {};
    for (const [kind, list] of Object.entries(resources)) out[plural[kind as keyof typeof plural]] = list.map(objectOf);
    return JSON.stringify(out);
  };
  const post = async (view: NodeView, json: string) => {
    const url = `http://${addresses.control}/snapshot?view=${encodeURIComponent(viewKey(view))}`;
    const res = await fetch(url, { method: 'POST', body: json, signal: AbortSignal.timeout(postTimeoutMs) }).catch(
      (err: unknown) => {
        throw new Error(`peer did not answer a snapshot POST within ${postTimeoutMs / 1000} s (${String(err)})`);
      },
    );
    if (!res.ok) throw new Error(`peer rejected snapshot: ${await res.text()}`);
  };
  for (const view of views) await post(view, body(view));
  /** Replaces a group's objects; returns the POSTs of the views it touches (originators, their terminators). */
  const update = (group: string, next: SourcedObject[]) => {
    const ips = new Set([...(objects.get(group) ?? []), ...next].flatMap(endpointAddresses));
    if (next.length) objects.set(group, next);
    else objects.delete(group);
    const bodies = views
      .filter((v) => v.role === 'originate' || ips.has(v.listenAddress!))
      .map((v) => [v, body(v)] as const);
    return async () => void (await Promise.all(bodies.map(([v, b]) => post(v, b))));
  };
  return {
    name: `go-control-plane (${cache})`,
    xds: addresses.xds,
    pid: proc.pid!,
    prepare: async (i, marker) => update(`s${i}`, serviceObjects(i, marker)),
    addService: (k, marker) => update(addedName(k), serviceObjects(services + k, marker, addedName(k)))(),
    removeService: (k) => update(addedName(k), [])(),
    peerStats: async () => (await (await fetch(`http://${addresses.control}/stats`)).json()) as PeerStats,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}

function endpointAddresses(o: SourcedObject): string[] {
  const endpoints = (o.object as { endpoints?: { addresses: string[] }[] }).endpoints ?? [];
  return endpoints.flatMap((e) => e.addresses);
}
