// Control-plane scenarios: one server (shim or peer), one load generator process, S1's measurements.
import { cpuSeconds, rssBytes } from './proc.js';
import { Child, now, percentile, sleep } from './child.js';
import { markerAddress, podAddress, podCount } from './fixtures.js';
import type { StreamSpec } from './loadgen.js';
import type { Server } from './servers.js';
import type { WatchRequest } from './watches.js';

export interface RunOptions {
  originate: number;
  terminate: number;
  delta: boolean;
  /** Single changes, one at a time. */
  changes: number;
  /** Changes per second and for how long (0 s: skip). */
  rate: number;
  rateSeconds: number;
  services: number;
  /** A CPU profile of the shim for each phase (initial sync, single changes, the rate run). */
  profile?: boolean;
}

export interface RunResult {
  syncMs: number;
  syncedStreams: number;
  single: number[];
  singleMissed: number;
  /** Why the single changes stopped early, if they did. */
  singleNote?: string;
  rated: number[];
  rateMissed: number;
  rateCores: number;
  deltaBytesPerStream?: number;
  /** CPU seconds of the server for the sync and the single changes (the rate run excluded). */
  cpuSeconds: number;
  /** RSS of the server after the single changes (not collected). */
  rssBytes: number;
  loadgenCpu: number;
  /** CPU seconds of the server and of the generator in the initial sync (the generator's from its start). */
  syncCpu: PhaseCpu;
  /** The same per single change (the 100 ms pause after each included: neither side works in it). */
  singleCpu: PhaseCpu;
}

export interface PhaseCpu {
  server: number;
  generator: number;
}

/** A single change is missed after this long; the next one waits until the server is quiet again. */
export const singleTimeoutMs = 5000;
/** Misses in a row after which a server is taken to be overloaded and its single changes stop. */
const missesInARow = 5;

let markerSeq = 0;
export const nextMarker = () => markerAddress(markerSeq++);

export function streamSpecs(originate: number, terminate: number): StreamSpec[] {
  const out: StreamSpec[] = [];
  for (let i = 0; i < originate; i++) out.push({ id: `o-${i}`, role: 'originate', listenAddress: '127.0.0.1' });
  for (let i = 0; i < terminate; i++)
    out.push({ id: `t-${i}`, role: 'terminate', listenAddress: podAddress(i % podCount) });
  return out;
}

/** A load generator with every stream connected and the initial sync done. */
export async function connectAndSync(
  server: Server,
  o: { originate: number; terminate: number; delta: boolean },
): Promise<{ gen: Child; syncMs: number; syncedStreams: number }> {
  const gen = new Child('loadgen.ts', {
    execArgv: process.env.BENCH_PROFILE_LOADGEN ? ['--cpu-prof', '--cpu-prof-dir=bench/profiles/loadgen'] : [],
  });
  await gen.next('ready');
  const { start } = await gen.ask(
    { cmd: 'connect', address: server.xds, delta: o.delta, streams: streamSpecs(o.originate, o.terminate) },
    'connected',
  );
  const quiet = await gen.ask({ cmd: 'quiet', ms: 1500 }, 'quiet', 300_000);
  return { gen, syncMs: quiet.lastAck - start, syncedStreams: quiet.withResponses };
}

/**
 * One change: the watch goes to the generator, then `fire` makes the change (an IPC message, a file
 * write, a POST to the peer). Resolves to the time until every originate stream had it, or undefined
 * when it did not come within `timeoutMs`. A failing `fire` (a POST the peer did not answer) rejects.
 */
export async function measureChange(
  gen: Child,
  watch: Omit<WatchRequest, 't0'>,
  fire: () => void | Promise<void>,
  timeoutMs: number,
): Promise<{ seen: Promise<number | undefined>; fired: Promise<void> }> {
  const key = watch.kind === 'add' || watch.kind === 'remove' ? `${watch.kind}:${watch.name}` : watch.marker!;
  const seen = gen
    .next('seen', timeoutMs, (m) => m.marker === key)
    .then(
      (m) => {
        if (process.env.BENCH_TRACE)
          process.stderr.write(
            `bench: ${key}: first stream ${m.firstMs.toFixed(0)} ms, last ${m.latencyMs.toFixed(0)} ms\n`,
          );
        return m.latencyMs as number;
      },
      async () => {
        // The generator may be gone already (a failed step): a missed change either way.
        await gen.ask({ cmd: 'unwatch', marker: key }, 'unwatched', 10_000).catch(() => undefined);
        return undefined;
      },
    );
  gen.send({ cmd: 'watch', ...watch, t0: now() });
  const fired = Promise.resolve().then(fire);
  return { seen, fired };
}

/** CPU seconds the load generator has used since it started. */
export async function generatorCpu(gen: Child): Promise<number> {
  return (await gen.ask({ cmd: 'cpu' }, 'cpu')).seconds;
}

/** After a missed change: waits until no response came for 1 s, so the next change starts from rest. */
export async function settle(gen: Child): Promise<void> {
  await gen.ask({ cmd: 'quiet', ms: 1000 }, 'quiet', 120_000);
}

export async function run(server: Server, o: RunOptions): Promise<RunResult> {
  const cpu0 = cpuSeconds(server.pid);
  if (o.profile) await server.profileStart?.();
  const { gen, syncMs, syncedStreams } = await connectAndSync(server, o);
  // Which side a phase waited on: the CPU each used in it (each has a core of its own when pinned).
  const syncCpu = { server: cpuSeconds(server.pid) - cpu0, generator: await generatorCpu(gen) };

  const change = async (timeoutMs: number) => {
    const marker = nextMarker();
    const fire = await server.prepare((markerSeq * 37) % o.services, marker);
    return measureChange(gen, { marker }, fire, timeoutMs);
  };

  const phase = async (name: string) => {
    const file = await server.profileStop?.(`${o.delta ? 'delta' : 'sotw'}-${name}`);
    if (file) process.stderr.write(`bench: profile of the ${name} phase ${file}\n`);
  };
  if (o.profile) {
    await phase('sync');
    await server.profileStart?.();
  }
  const single: number[] = [];
  let singleMissed = 0;
  let singleNote: string | undefined;
  let deltaBytesPerStream: number | undefined;
  // An experiment: a pause after the sync (do the first changes pay for time since it, or for being first?)
  if (process.env.BENCH_PAUSE_AFTER_SYNC_MS) await sleep(Number(process.env.BENCH_PAUSE_AFTER_SYNC_MS));
  gen.send({ cmd: 'markBytes' });
  const singlesFrom = { server: cpuSeconds(server.pid), generator: await generatorCpu(gen) };
  for (let k = 0, inARow = 0; k < o.changes; k++) {
    const { seen, fired } = await change(singleTimeoutMs);
    await fired;
    const latency = await seen;
    if (latency === undefined) {
      singleMissed++;
      if (++inARow === missesInARow) {
        singleNote = `stopped after ${k + 1} changes: ${missesInARow} in a row took over ${singleTimeoutMs / 1000} s`;
        break;
      }
      await settle(gen);
    } else {
      single.push(latency);
      inARow = 0;
    }
    await sleep(100);
    if (k === 9 && o.delta) deltaBytesPerStream = (await gen.ask({ cmd: 'bytes' }, 'bytes')).perStream / 10;
  }
  if (o.profile) await phase('single-changes');
  const cpuSingles = cpuSeconds(server.pid) - cpu0;
  const tried = Math.max(1, single.length + singleMissed);
  const singleCpu = {
    server: (cpuSeconds(server.pid) - singlesFrom.server) / tried,
    generator: ((await generatorCpu(gen)) - singlesFrom.generator) / tried,
  };
  const rssSingles = rssBytes(server.pid);

  const rated: number[] = [];
  let rateMissed = 0;
  let rateCores = NaN;
  if (o.rateSeconds > 0) {
    if (o.profile) await server.profileStart?.();
    const pending: Promise<void>[] = [];
    let failure: unknown;
    const c0 = cpuSeconds(server.pid);
    const t0 = now();
    const total = o.rate * o.rateSeconds;
    for (let k = 0; k < total; k++) {
      const due = t0 + (k * 1000) / o.rate;
      if (due > now()) await sleep(due - now());
      const { seen, fired } = await change(10_000);
      fired.catch((err) => (failure ??= err));
      const at = now() - t0;
      pending.push(
        seen.then((l) => {
          if (l === undefined) rateMissed++;
          else rated.push(l);
          if (process.env.BENCH_TRACE)
            process.stderr.write(`bench: rate change ${k} at +${at.toFixed(0)} ms: ${l ?? 'missed'}\n`);
        }),
      );
      if (failure) throw failure;
    }
    const t1 = now();
    rateCores = (cpuSeconds(server.pid) - c0) / ((t1 - t0) / 1000);
    await Promise.all(pending);
    if (failure) throw failure;
    if (o.profile) await phase('rate');
  }
  const loadgenCpu = await generatorCpu(gen);
  await gen.ask({ cmd: 'close' }, 'closed');
  return {
    syncMs,
    syncedStreams,
    single,
    singleMissed,
    singleNote,
    rated,
    rateMissed,
    rateCores,
    deltaBytesPerStream,
    cpuSeconds: cpuSingles,
    rssBytes: rssSingles,
    loadgenCpu,
    syncCpu,
    singleCpu,
  };
}

export const p = percentile;
