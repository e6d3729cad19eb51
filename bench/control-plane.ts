// Control-plane scenarios: one server (shim or peer), one load generator process, S1's measurements.
import { cpuSeconds, rssBytes } from './proc.js';
import { Child, now, percentile, sleep } from './child.js';
import { markerAddress, podAddress, podCount } from './fixtures.js';
import type { StreamSpec } from './loadgen.js';
import type { Server } from './servers.js';

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
}

export interface RunResult {
  syncMs: number;
  syncedStreams: number;
  single: number[];
  singleMissed: number;
  rated: number[];
  rateMissed: number;
  rateCores: number;
  deltaBytesPerStream?: number;
  cpuSeconds: number;
  rssBytes: number;
  loadgenCpu: number;
}

let markerSeq = 0;

export function streamSpecs(originate: number, terminate: number): StreamSpec[] {
  const out: StreamSpec[] = [];
  for (let i = 0; i < originate; i++) out.push({ id: `o-${i}`, role: 'originate', listenAddress: '127.0.0.1' });
  for (let i = 0; i < terminate; i++)
    out.push({ id: `t-${i}`, role: 'terminate', listenAddress: podAddress(i % podCount) });
  return out;
}

export async function run(server: Server, o: RunOptions): Promise<RunResult> {
  const cpu0 = cpuSeconds(server.pid);
  const gen = new Child(
    'loadgen.ts',
    process.env.BENCH_PROFILE_LOADGEN ? ['--cpu-prof', '--cpu-prof-dir=bench/profiles/loadgen'] : [],
  );
  await gen.next('ready');
  const { start } = await gen.ask(
    { cmd: 'connect', address: server.xds, delta: o.delta, streams: streamSpecs(o.originate, o.terminate) },
    'connected',
  );
  const quiet = await gen.ask({ cmd: 'quiet', ms: 1500 }, 'quiet', 300_000);
  const syncMs = quiet.lastAck - start;

  const change = async (timeoutMs: number): Promise<{ seen: Promise<number | undefined> }> => {
    const k = markerSeq++;
    const marker = markerAddress(k);
    const fire = await server.prepare((k * 37) % o.services, marker);
    const seen = gen
      .next('seen', timeoutMs, (m) => m.marker === marker)
      .then(
        (m) => {
          if (process.env.BENCH_TRACE)
            process.stderr.write(
              `bench: change ${k}: first stream ${m.firstMs.toFixed(0)} ms, last ${m.latencyMs.toFixed(0)} ms\n`,
            );
          return m.latencyMs as number;
        },
        async () => {
          await gen.ask({ cmd: 'unwatch', marker }, 'unwatched');
          return undefined;
        },
      );
    gen.send({ cmd: 'watch', marker, t0: now() });
    fire();
    return { seen };
  };

  const single: number[] = [];
  let singleMissed = 0;
  let deltaBytesPerStream: number | undefined;
  gen.send({ cmd: 'markBytes' });
  for (let k = 0; k < o.changes; k++) {
    const latency = await (await change(5000)).seen;
    if (latency === undefined) singleMissed++;
    else single.push(latency);
    await sleep(100);
    if (k === 9 && o.delta) deltaBytesPerStream = (await gen.ask({ cmd: 'bytes' }, 'bytes')).perStream / 10;
  }

  const rated: number[] = [];
  let rateMissed = 0;
  let rateCores = NaN;
  if (o.rateSeconds > 0) {
    const pending: Promise<void>[] = [];
    const c0 = cpuSeconds(server.pid);
    const t0 = now();
    const total = o.rate * o.rateSeconds;
    for (let k = 0; k < total; k++) {
      const due = t0 + (k * 1000) / o.rate;
      if (due > now()) await sleep(due - now());
      pending.push(
        (await change(10_000)).seen.then(
          (l: number | undefined) => void (l === undefined ? rateMissed++ : rated.push(l)),
        ),
      );
    }
    const t1 = now();
    rateCores = (cpuSeconds(server.pid) - c0) / ((t1 - t0) / 1000);
    await Promise.all(pending);
  }
  const loadgenCpu = (await gen.ask({ cmd: 'cpu' }, 'cpu')).seconds;
  const result: RunResult = {
    syncMs,
    syncedStreams: quiet.withResponses,
    single,
    singleMissed,
    rated,
    rateMissed,
    rateCores,
    deltaBytesPerStream,
    cpuSeconds: cpuSeconds(server.pid) - cpu0,
    rssBytes: rssBytes(server.pid),
    loadgenCpu,
  };
  await gen.ask({ cmd: 'close' }, 'closed');
  return result;
}

export const p = percentile;
