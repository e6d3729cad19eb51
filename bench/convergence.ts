// `make bench`: every scenario in one run, one table (bench/README.md). Benchmarks print figures; they
// are not tests. Flags: --scale F multiplies Service and stream counts (default 1), --rate-seconds N
// shortens the 20 changes/s run (default 60), --cores pinned,shared (default both where the machine has
// 2 cores and taskset), --no-peer, --peers snapshot,linear, --no-dataplane, --no-k8s, --profile (a CPU
// profile of the shim per measured phase into bench/profiles/), --only sotw,delta,peer,s2,idle,add,dataplane,mtls (a
// subset).
import fs from 'node:fs';
import { addRemoveSteps } from './add-remove.js';
import { canPin, Child, sleep, type Cores } from './child.js';
import { p, run, streamSpecs, type RunResult } from './control-plane.js';
import { runDataPlane } from './dataplane.js';
import { runDataPlaneMtls } from './dataplane-mtls.js';
import { mallocHeapBytes, peakRssBytes, rssBytes } from './proc.js';
import { peerBinary, startPeer, startShim } from './servers.js';
import { log, mb, ms, printTable, row, step } from './table.js';

const args = process.argv.slice(2);
// A stray rejection (a request the failed step left behind) is logged; the run and its table go on.
process.on('unhandledRejection', (err) => log(`unhandled: ${err instanceof Error ? err.stack : err}`));
// Ctrl-C or SIGTERM: exit through process.exit, whose handler (child.ts) ends every process started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const list = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]!.split(',') : undefined;
};
const scale = flag('--scale', 1);
const rateSeconds = flag('--rate-seconds', 60);
const profile = args.includes('--profile');
const n = (x: number) => Math.max(1, Math.round(x * scale));
const only = list('--only');
const runs = (part: string) => !only || only.includes(part);
const modes = (list('--cores') ?? (canPin ? ['pinned', 'shared'] : ['shared'])) as Cores[];
if (modes.includes('pinned') && !canPin) throw new Error('--cores pinned needs 2 cores and taskset');
const minutes = (m: number) => m * 60_000;

const S1 = { services: n(1000), originate: n(1000), terminate: n(100) };
log(
  `S1 = ${S1.services} Services x 3 endpoints, ${S1.originate} originate + ${S1.terminate} terminate streams` +
    `${scale !== 1 ? ` (scaled by ${scale})` : ''}; rate run ${rateSeconds} s; cores: ${modes.join(', ')}`,
);
const ok = (r: RunResult, limit: number) => p(r.single, 99) <= limit && !r.singleMissed;
const singles = (r: RunResult) =>
  `${ms(p(r.single, 50))} / ${ms(p(r.single, 99))}${r.singleMissed ? `, ${r.singleMissed} missed` : ''}` +
  `${r.singleNote ? ` (${r.singleNote})` : ''}`;

/** The shim's S1 results per cores mode and protocol: the peers are compared with them. */
const shimS1 = new Map<string, RunResult>();

async function s1(delta: boolean, mode: Cores): Promise<RunResult> {
  const proto = delta ? 'delta' : 'SotW';
  const server = await startShim(S1.services);
  const r = await run(server, { ...S1, delta, changes: 50, rate: 20, rateSeconds, profile });
  shimS1.set(`${mode}/${proto}`, r);
  await server.collect?.();
  if (process.env.BENCH_HEAP_SNAPSHOT) log(`shim S1 ${proto} heap snapshot: ${await server.heapSnapshot?.()}`);
  const rss = rssBytes(server.pid);
  const memory = await server.stats?.();
  if (memory)
    log(
      `shim S1 ${proto} memory: heap ${mb(memory.heapUsed)} of ${mb(memory.heapTotal)}, ` +
        `external ${mb(memory.external)}`,
    );
  await server.stop();
  const tag = `S1 (${S1.services} svc, ${S1.originate}+${S1.terminate} streams), ${proto}`;
  row(
    tag,
    'initial sync, all streams ACKed',
    `${ms(r.syncMs)} (${r.syncedStreams} streams)`,
    '<= 3 s',
    r.syncMs <= 3000,
  );
  row(tag, 'one endpoint change -> all ACKed, p50 / p99 (50 changes)', singles(r), 'p99 <= 100 ms', ok(r, 100));
  // Which side each phase waited on: with one core each (pinned), a side that used about the phase's
  // whole time was the bottleneck, and no latency goal is met below the shim's own CPU for the work.
  row(
    tag,
    'CPU used, shim / load generator: initial sync; per single change',
    `${r.syncCpu.server.toFixed(1)} / ${r.syncCpu.generator.toFixed(1)} s; ` +
      `${ms(r.singleCpu.server * 1000)} / ${ms(r.singleCpu.generator * 1000)}`,
  );
  if (rateSeconds > 0)
    row(
      tag,
      `20 changes/s for ${rateSeconds} s: convergence p99; shim CPU`,
      `${ms(p(r.rated, 99))}${r.rateMissed ? ` (${r.rateMissed} missed)` : ''}; ${r.rateCores.toFixed(2)} cores`,
      'p99 <= 250 ms; <= 1 core',
      p(r.rated, 99) <= 250 && r.rateCores <= 1 && !r.rateMissed,
    );
  if (delta)
    row(
      tag,
      'one endpoint change: bytes sent per originate stream',
      `${(r.deltaBytesPerStream ?? NaN).toFixed(0)} B`,
      '<= 2 KB',
      (r.deltaBytesPerStream ?? Infinity) <= 2048,
    );
  row(tag, 'shim RSS after the run (after a full GC); load generator CPU', `${mb(rss)}; ${r.loadgenCpu.toFixed(1)} s`);
  return r;
}

if (runs('sotw')) await step('S1 SotW', modes, minutes(12), (mode) => s1(false, mode).then(() => undefined));
if (runs('delta')) await step('S1 delta', modes, minutes(12), (mode) => s1(true, mode).then(() => undefined));

if (!args.includes('--no-peer') && runs('peer')) {
  if (!fs.existsSync(peerBinary)) row('go-control-plane peer', 'the step', `failed: no peer binary at ${peerBinary}`);
  else
    for (const cache of (list('--peers') ?? ['snapshot', 'linear']) as ('snapshot' | 'linear')[])
      for (const delta of [false, true]) {
        const proto = delta ? 'delta' : 'SotW';
        const tag = `S1 vs go-control-plane ${cache} cache (${proto})`;
        await step(tag, modes, minutes(12), async (mode) => {
          const peer = await startPeer(S1.services, cache);
          const g = await run(peer, { ...S1, delta, changes: 50, rate: 20, rateSeconds: 0 });
          const st = await peer.peerStats!();
          await peer.stop();
          log(
            `${tag}: peer applied ${st.posts} snapshots: ` +
              `parse max ${ms(st.parseMaxMs)}, apply max ${ms(st.applyMaxMs)}, waited max ${ms(st.waitMaxMs)}`,
          );
          // The shim's run of the same mode and protocol (sync + 50 changes); run here when S1 was not.
          let s = shimS1.get(`${mode}/${proto}`);
          if (!s) {
            const server = await startShim(S1.services);
            s = await run(server, { ...S1, delta, changes: 50, rate: 20, rateSeconds: 0 });
            shimS1.set(`${mode}/${proto}`, s);
            await server.stop();
          }
          const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a');
          row(tag, 'initial sync: shim / peer', `${ms(s.syncMs)} / ${ms(g.syncMs)}`);
          row(
            tag,
            'one endpoint change -> all ACKed, p99: shim / peer (ratio)',
            `${ms(p(s.single, 99))} / ${ms(p(g.single, 99))}` +
              `${g.singleMissed ? ` (peer: ${g.singleMissed} missed)` : ''}` +
              ` (${ratio(p(s.single, 99), p(g.single, 99))})${g.singleNote ? `; peer ${g.singleNote}` : ''}`,
            '<= 1.0',
            p(s.single, 99) <= p(g.single, 99) || g.singleMissed > 0,
          );
          row(
            tag,
            'CPU seconds (sync + 50 changes): shim / peer (ratio)',
            `${s.cpuSeconds.toFixed(1)} / ${g.cpuSeconds.toFixed(1)} (${ratio(s.cpuSeconds, g.cpuSeconds)})`,
            '<= 1.0',
            s.cpuSeconds <= g.cpuSeconds,
          );
          row(
            tag,
            'RSS after the changes: shim / peer (ratio)',
            `${mb(s.rssBytes)} / ${mb(g.rssBytes)} (${ratio(s.rssBytes, g.rssBytes)})`,
            '<= 1.0',
            s.rssBytes <= g.rssBytes,
          );
        });
      }
}

if (runs('add'))
  for (const s of addRemoveSteps({
    scale,
    modes,
    k8s: !args.includes('--no-k8s'),
    profile,
    sources: list('--add-sources'),
  }))
    await s();

if (runs('s2'))
  await step('S2', modes, minutes(6), async () => {
    const S2 = { services: n(10000), originate: n(91), terminate: n(9) };
    const server = await startShim(S2.services);
    const r = await run(server, { ...S2, delta: false, changes: 5, rate: 0, rateSeconds: 0 });
    const peak = peakRssBytes(server.pid);
    await sleep(2000);
    await server.collect?.();
    const rss = rssBytes(server.pid);
    const memory = await server.stats?.();
    // What RSS is made of: the V8 heap (committed), external memory (encoded bytes), and malloc's main
    // heap, which keeps the space of transient buffers (per-stream response copies, ACKs being read).
    if (memory)
      log(
        `shim S2 memory: rss ${mb(rss)}, heap ${mb(memory.heapUsed)} of ${mb(memory.heapTotal)}, ` +
          `external ${mb(memory.external)}, malloc's main heap ${mb(mallocHeapBytes(server.pid))}`,
      );
    // BENCH_HEAP_SNAPSHOT=1: the shim's heap after the sync, to bench/profiles/shim.heapsnapshot.
    if (process.env.BENCH_HEAP_SNAPSHOT) log(`shim S2 heap snapshot: ${await server.heapSnapshot?.()}`);
    // Idle: V8's memory reducer gives back, some seconds later, the young generation the sync grew
    // (33 MB of committed, empty semi-spaces at S2). What an idle shim keeps is what the goal is about.
    const idle = await settledRss(server.pid);
    await server.stop();
    row(
      `S2 (${S2.services} svc, ${S2.originate}+${S2.terminate} streams)`,
      'shim RSS after sync: idle / +2 s, after a full GC / peak (sync time)',
      `${mb(idle)} / ${mb(rss)} / ${mb(peak)} (${ms(r.syncMs)})`,
      '<= 200 MB idle',
      idle <= 200e6,
    );
  });

/** RSS once it stops falling: three readings 2 s apart within 1 MB, at least 10 s on (30 s at most). */
async function settledRss(pid: number): Promise<number> {
  const readings: number[] = [];
  for (let waited = 0; waited <= 30_000; waited += 2000) {
    readings.push(rssBytes(pid));
    const last = readings.slice(-3);
    if (waited >= 10_000 && Math.max(...last) - Math.min(...last) <= 1e6) break;
    await sleep(2000);
  }
  return readings.at(-1)!;
}

if (runs('idle'))
  await step('idle streams', modes, minutes(6), async () => {
    // A small configuration, 1,000 streams that only ACK, then 1,000 more. The figure is the second
    // thousand's cost (the marginal cost of one more Envoy): the first thousand also pays for one-time
    // growth (V8's young generation, code, pools) that more Envoys do not repeat.
    const server = await startShim(10);
    const count = n(1000);
    const connect = async (from: number) => {
      const gen = new Child('loadgen.ts');
      await gen.next('ready');
      const streams = streamSpecs(count, 0).map((s) => ({ ...s, id: `${s.id}-${from}` }));
      await gen.ask({ cmd: 'connect', address: server.xds, delta: false, streams }, 'connected');
      await gen.ask({ cmd: 'quiet', ms: 1500 }, 'quiet');
      await sleep(2000);
      await server.collect?.();
      return gen;
    };
    await sleep(1000);
    await server.collect?.();
    const start = rssBytes(server.pid);
    const first = await connect(0);
    const middle = rssBytes(server.pid);
    const second = await connect(count);
    const end = rssBytes(server.pid);
    for (const gen of [first, second]) await gen.ask({ cmd: 'close' }, 'closed');
    await server.stop();
    const perStream = (end - middle) / count;
    const firstKb = ((middle - start) / count / 1024).toFixed(1);
    row(
      'idle streams (SotW, 10 svc)',
      `RSS added per connected stream (streams ${count + 1}-${2 * count}; first ${count}: ${firstKb} KB)`,
      `${(perStream / 1024).toFixed(1)} KB`,
      '<= 50 KB',
      perStream <= 50 * 1024,
    );
  });

// Real Envoys on both cores: measured once, with the cores shared.
if (!args.includes('--no-dataplane') && runs('dataplane'))
  await step('data plane', ['shared'], minutes(12), async () => {
    for (const [scenario, figure, value, goal, verdict] of await runDataPlane(scale))
      row(scenario, figure, value, goal, verdict === '' ? undefined : verdict === 'met');
  });

if (!args.includes('--no-dataplane') && runs('mtls'))
  await step('data plane mTLS', ['shared'], minutes(6), async () => {
    for (const [scenario, figure, value, goal, verdict] of await runDataPlaneMtls(scale))
      row(scenario, figure, value, goal, verdict === '' ? undefined : verdict === 'met');
  });

printTable(modes);
process.exit(0);
