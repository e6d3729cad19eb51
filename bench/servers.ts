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
import { benchDir, Child, started } from './child.js';
import { podAddress, podCount, serviceObjects } from './fixtures.js';

export interface Server {
  name: string;
  xds: string;
  pid: number;
  /** Prepares change `i` (Service i's first endpoint moves to `marker`); calling the result makes it happen. */
  prepare(i: number, marker: string): Promise<() => void>;
  stop(): Promise<void>;
  /** The shim only: process.memoryUsage() of the server. */
  stats?(): Promise<NodeJS.MemoryUsage>;
  /** The shim only: a full garbage collection, so RSS shows live memory rather than GC timing. */
  collect?(): Promise<void>;
  /** The shim only: sets (replaces) the objects of the named groups (the soak's own Services). */
  set?(updates: Record<string, SourcedObject[]>): void;
  /** The shim only: its /metrics text. */
  metrics?(): Promise<string>;
}

export async function startShim(services: number, profile = false): Promise<Server> {
  const child = new Child('shim-process.ts', [
    '--expose-gc',
    ...(process.env.BENCH_SHIM_FLAGS ?? '').split(' ').filter(Boolean),
    ...(profile ? ['--cpu-prof', '--cpu-prof-dir=bench/profiles'] : []),
  ]);
  await child.next('ready');
  const updates: Record<string, SourcedObject[]> = {};
  for (let i = 0; i < services; i++) updates[`s${i}`] = serviceObjects(i);
  child.send({ cmd: 'set', updates });
  const { xds } = await child.ask({ cmd: 'start' }, 'started', 300_000);
  return {
    name: 'shim',
    xds,
    pid: child.pid,
    prepare: async (i, marker) => () => child.send({ cmd: 'set', updates: { [`s${i}`]: serviceObjects(i, marker) } }),
    stats: async () => (await child.ask({ cmd: 'stats' }, 'stats')).memory,
    collect: async () => void (await child.ask({ cmd: 'gc' }, 'gc')),
    set: (updates) => child.send({ cmd: 'set', updates }),
    metrics: async () => (await child.ask({ cmd: 'metrics' }, 'metrics')).text,
    stop: async () => {
      child.send({ cmd: 'stop' });
      await new Promise((r) => child.process.once('exit', r));
    },
  };
}

export const peerBinary = path.join(benchDir, 'peers', 'gcp', 'gcp-peer');

const plural = { listener: 'listeners', route: 'routes', cluster: 'clusters', endpoint: 'endpoints' } as const;

export async function startPeer(services: number): Promise<Server> {
  const proc: ChildProcess = spawn(peerBinary, [], { stdio: ['ignore', 'pipe', 'inherit'] });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  const addresses = await new Promise<{ xds: string; control: string }>((resolve) =>
    proc.stdout!.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]!))),
  );
  const objects = new Map<number, SourcedObject[]>();
  for (let i = 0; i < services; i++) objects.set(i, serviceObjects(i));
  const firstAddress = new Map<number, string>();
  let version = 0;
  const views: NodeView[] = [{ role: 'originate', listenAddress: '127.0.0.1' }];
  for (let p = 0; p < podCount; p++) views.push({ role: 'terminate', listenAddress: podAddress(p) });
  const body = (view: NodeView) => {
    const model = buildModel([...objects.values()].flat(), defaultModelOptions);
    const { resources } = translate(model, view);
    const out: Record<string, unknown> = { version: String(++version) };
    for (const [kind, list] of Object.entries(resources)) out[plural[kind as keyof typeof plural]] = list.map(objectOf);
    return JSON.stringify(out);
  };
  const post = async (view: NodeView, json: string) => {
    const res = await fetch(`http://${addresses.control}/snapshot?view=${encodeURIComponent(viewKey(view))}`, {
      method: 'POST',
      body: json,
    });
    if (!res.ok) throw new Error(`peer rejected snapshot: ${await res.text()}`);
  };
  for (const view of views) await post(view, body(view));
  return {
    name: 'go-control-plane',
    xds: addresses.xds,
    pid: proc.pid!,
    prepare: async (i, marker) => {
      // The views this change touches: originators, and the terminator beside the endpoint that moved.
      const old = firstAddress.get(i) ?? podAddress((i * 3) % podCount);
      firstAddress.set(i, marker);
      objects.set(i, serviceObjects(i, marker));
      const touched = views.filter((v) => v.role === 'originate' || v.listenAddress === old);
      const bodies = touched.map((v) => [v, body(v)] as const);
      return () => void Promise.all(bodies.map(([v, b]) => post(v, b)));
    },
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    },
  };
}
