// A Service added and removed (CDS and LDS change; the new Service's endpoints too): from the change in
// the source to the moment every one of 500 originate streams over 1,000 Services has the new cluster,
// listener and endpoints (added), or has neither cluster nor listener any more (removed). SotW and
// delta, through each source:
//  - the in-process driver (IPC, as S1);
//  - the file source: one file of 2,000 documents (1,000 Services + EndpointSlices) rewritten whole with
//    the new Service's two documents appended (and then without them), as an editor saves it; and a
//    folder of 1,000 files, where the Service comes as a new file and goes with it;
//  - the Kubernetes source against a real kube-apiserver (bench/k8s-api.ts), the change an apply/delete.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { Child, sleep, type Cores } from './child.js';
import { connectAndSync, generatorCpu, measureChange, nextMarker, p, settle } from './control-plane.js';
import { addedName, serviceObjects } from './fixtures.js';
import { cpuSeconds } from './proc.js';
import { startShim, type Server, type ShimSource } from './servers.js';
import { log, ms, row, step } from './table.js';

interface Mutator {
  add(k: number, marker: string): void | Promise<void>;
  remove(k: number): void | Promise<void>;
}

const goals = { delta: 100, SotW: 500 };
let seq = 0;
const yamlOf = (i: number, marker?: string, name?: string) =>
  serviceObjects(i, marker, name)
    .map((o) => stringify(o.object))
    .join('---\n');

/** Writes a file as editors do: a temporary file renamed over the target. */
function save(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function measure(
  tag: string,
  server: Server,
  mutate: Mutator,
  o: { services: number; originate: number; delta: boolean; changes: number; profile: boolean },
): Promise<number> {
  const { gen, syncMs, syncedStreams } = await connectAndSync(server, { ...o, terminate: 0 });
  if (o.profile) await server.profileStart?.();
  const cpu0 = cpuSeconds(server.pid);
  const genCpu0 = await generatorCpu(gen);
  const added: number[] = [];
  const removed: number[] = [];
  let missed = 0;
  for (let c = 0; c < o.changes; c++) {
    const k = seq++;
    const marker = nextMarker();
    for (const kind of ['add', 'remove'] as const) {
      const fire = () => (kind === 'add' ? mutate.add(k, marker) : mutate.remove(k));
      const { seen, fired } = await measureChange(gen, { kind, name: addedName(k), marker }, fire, 10_000);
      await fired;
      const latency = await seen;
      if (latency === undefined) {
        missed++;
        await settle(gen);
      } else (kind === 'add' ? added : removed).push(latency);
      await sleep(200);
    }
  }
  const cpuPerChange = (cpuSeconds(server.pid) - cpu0) / (2 * o.changes);
  const genCpuPerChange = ((await generatorCpu(gen)) - genCpu0) / (2 * o.changes);
  if (o.profile) log(`${tag}: profile of the changes ${await server.profileStop?.(o.delta ? 'delta' : 'sotw')}`);
  await gen.ask({ cmd: 'close' }, 'closed');
  const proto = o.delta ? 'delta' : 'SotW';
  const goal = goals[proto];
  const fig = (what: string) => `${what} ${o.originate} ${proto} streams, p50 / p99 (${o.changes})`;
  const missing = missed ? `, ${missed} missed` : '';
  log(`${tag}: initial sync ${ms(syncMs)} (${syncedStreams} streams)`);
  row(
    tag,
    fig('Service added -> cluster, listener and endpoints on all'),
    `${ms(p(added, 50))} / ${ms(p(added, 99))}${missing}`,
    `p99 <= ${goal} ms`,
    p(added, 99) <= goal && !missed,
  );
  row(
    tag,
    fig('Service removed -> cluster and listener gone from all'),
    `${ms(p(removed, 50))} / ${ms(p(removed, 99))}`,
    'report',
  );
  row(
    tag,
    'CPU per change (add or remove), shim / load generator',
    `${ms(cpuPerChange * 1000)} / ${ms(genCpuPerChange * 1000)}`,
    'report',
  );
  return cpuPerChange;
}

export function addRemoveSteps(o: {
  scale: number;
  modes: Cores[];
  k8s: boolean;
  profile: boolean;
  /** Which sources to run (default all): driver, file, folder, k8s. */
  sources?: string[];
}): (() => Promise<void>)[] {
  const n = (x: number) => Math.max(1, Math.round(x * o.scale));
  const base = { services: n(1000), originate: n(500), changes: 10 };
  const label = `${base.services} svc, ${base.originate} streams`;
  const budget = 6 * 60_000;
  const steps: (() => Promise<void>)[] = [];
  const each = (part: string, source: string, body: (delta: boolean, tag: string, mode: Cores) => Promise<unknown>) => {
    if ((o.sources && !o.sources.includes(part)) || (part === 'k8s' && !o.k8s)) return;
    for (const delta of [false, true]) {
      const tag = `add/remove a Service (${label}), ${source}, ${delta ? 'delta' : 'SotW'}`;
      steps.push(() => step(tag, o.modes, budget, async (mode) => void (await body(delta, tag, mode))));
    }
  };
  /** Shim CPU per change through the in-process driver (per cores mode and protocol): the file's reference. */
  const driverCpu = new Map<string, number>();
  const withShim = async (source: ShimSource, tag: string, delta: boolean, mutate: (s: Server) => Mutator) => {
    const server = await startShim(base.services, { source });
    try {
      return await measure(tag, server, mutate(server), { ...base, delta, profile: o.profile });
    } finally {
      await server.stop();
    }
  };

  each('driver', 'in-process driver', async (delta, tag, mode) => {
    const mutate = (s: Server) => ({ add: s.addService!, remove: s.removeService! });
    driverCpu.set(`${mode}/${delta}`, await withShim({ kind: 'memory' }, tag, delta, mutate));
  });

  each('file', `file source, one file of ${2 * base.services} documents`, async (delta, tag, mode) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-file-'));
    const file = path.join(dir, 'services.yaml');
    const text = Array.from({ length: base.services }, (_, i) => yamlOf(i)).join('---\n');
    save(file, text);
    try {
      const cpu = await withShim({ kind: 'file', path: file }, tag, delta, () => ({
        add: (k, marker) => save(file, `${text}---\n${yamlOf(base.services + k, marker, addedName(k))}`),
        remove: () => save(file, text),
      }));
      // The file's goal: a one-document change re-parses only what changed, so it costs about what the
      // same change through the driver costs (no parsing at all), not a re-parse of 2,000 documents.
      const driver = driverCpu.get(`${mode}/${delta}`);
      if (driver !== undefined)
        row(
          `file source, one file of ${2 * base.services} documents (${delta ? 'delta' : 'SotW'})`,
          'shim CPU per one-Service change: file / in-process driver (ratio)',
          `${(cpu * 1000).toFixed(0)} / ${(driver * 1000).toFixed(0)} ms (${(cpu / driver).toFixed(2)})`,
          '<= 1.5 (re-parse only what changed)',
          cpu <= 1.5 * driver,
        );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  each('folder', `file source, a folder of ${base.services} files`, async (delta, tag) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-folder-'));
    for (let i = 0; i < base.services; i++) fs.writeFileSync(path.join(dir, `s${i}.yaml`), yamlOf(i));
    const fileOf = (k: number) => path.join(dir, `${addedName(k)}.yaml`);
    try {
      await withShim({ kind: 'file', path: dir }, tag, delta, () => ({
        add: (k, marker) => save(fileOf(k), yamlOf(base.services + k, marker, addedName(k))),
        remove: (k) => fs.rmSync(fileOf(k)),
      }));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  each('k8s', 'Kubernetes source (kube-apiserver)', async (delta, tag) => {
    const api = new Child('k8s-api.ts', { tsx: true });
    const ask = async (m: object, reply: string, timeoutMs = 60_000) => {
      const error = api.next('error', timeoutMs);
      const answer = api.ask(m, reply, timeoutMs);
      error.catch(() => undefined);
      return Promise.race([answer, error.then((e) => Promise.reject(new Error(`k8s-api: ${e.message}`)))]);
    };
    try {
      await api.next('ready');
      const { kubeconfig, setupMs } = await ask({ cmd: 'start', services: base.services }, 'started', 240_000);
      log(`${tag}: API server up with ${base.services} Services + EndpointSlices in ${ms(setupMs)}`);
      await withShim({ kind: 'kubernetes', kubeconfig }, tag, delta, () => ({
        add: async (k, marker) => void (await ask({ cmd: 'add', i: base.services + k, k, marker }, 'added')),
        remove: async (k) => void (await ask({ cmd: 'remove', i: base.services + k, k }, 'removed')),
      }));
    } finally {
      await ask({ cmd: 'stop' }, 'stopped', 30_000).catch(() => undefined);
      api.kill();
    }
  });
  return steps;
}
