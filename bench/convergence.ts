// `make bench`: every scenario of issue 6 in one run, one table. Benchmarks print figures; they are
// not tests. Flags: --scale F multiplies Service and stream counts (default 1), --rate-seconds N
// shortens the 20 changes/s run (default 60), --no-peer, --no-dataplane, --profile (node --cpu-prof
// of the shim into bench/profiles/), --only sotw,delta,peer,s2,idle,dataplane,mtls (a subset, while tuning).
import fs from 'node:fs';
import { run, p, type RunResult } from './control-plane.js';
import { startPeer, startShim, peerBinary } from './servers.js';
import { rssBytes } from './proc.js';
import { Child, sleep } from './child.js';
import { runDataPlane } from './dataplane.js';
import { runDataPlaneMtls } from './dataplane-mtls.js';

const args = process.argv.slice(2);
// A failed run still ends its children (child.ts kills them on exit).
process.on('unhandledRejection', (err) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
  process.exit(1);
});
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const scale = flag('--scale', 1);
const rateSeconds = flag('--rate-seconds', 60);
const profile = args.includes('--profile');
const n = (x: number) => Math.max(1, Math.round(x * scale));
const onlyAt = args.indexOf('--only');
const only = onlyAt >= 0 ? new Set(args[onlyAt + 1]!.split(',')) : undefined;
const runs = (part: string) => !only || only.has(part);

const rows: string[][] = [];
const row = (scenario: string, figure: string, value: string, goal: string, verdict: string) => {
  rows.push([scenario, figure, value, goal, verdict]);
  // Also as it happens, so a run cut short still shows what it measured.
  process.stderr.write(`bench: | ${scenario} | ${figure} | ${value} | ${goal} | ${verdict} |\n`);
};
const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : 'n/a');
const mb = (x: number) => `${(x / 1e6).toFixed(0)} MB`;
const ok = (pass: boolean) => (pass ? 'met' : 'MISSED');
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

const S1 = { services: n(1000), originate: n(1000), terminate: n(100) };
log(
  `S1 = ${S1.services} Services x 3 endpoints, ${S1.originate} originate + ${S1.terminate} terminate streams${scale !== 1 ? ` (scaled by ${scale})` : ''}; rate run ${rateSeconds} s`,
);

function rateRow(scenario: string, r: RunResult) {
  if (rateSeconds <= 0) return;
  const value = `${ms(p(r.rated, 99))}${r.rateMissed ? ` (${r.rateMissed} missed)` : ''}; ${r.rateCores.toFixed(2)} cores`;
  row(
    scenario,
    `20 changes/s for ${rateSeconds} s: convergence p99; shim CPU`,
    value,
    'p99 <= 250 ms; <= 1 core',
    ok(p(r.rated, 99) <= 250 && r.rateCores <= 1 && !r.rateMissed),
  );
}

async function s1(delta: boolean): Promise<RunResult> {
  const server = await startShim(S1.services, profile);
  log(`shim S1 ${delta ? 'delta' : 'sotw'}: started`);
  const r = await run(server, { ...S1, delta, changes: 50, rate: 20, rateSeconds });
  // Live memory, not when V8 last collected (the comparison with the peer below reads both uncollected).
  await server.collect?.();
  r.rssBytes = rssBytes(server.pid);
  const memory = await server.stats?.();
  if (memory)
    log(
      `shim S1 ${delta ? 'delta' : 'sotw'} memory after the run: heap ${mb(memory.heapUsed)} of ${mb(memory.heapTotal)}, external ${mb(memory.external)}, RSS ${mb(memory.rss)}`,
    );
  await server.stop();
  log(`shim S1 ${delta ? 'delta' : 'sotw'}: done`);
  return r;
}

const tag = `S1 (${S1.services} svc, ${S1.originate}+${S1.terminate} streams)`;
if (runs('sotw')) {
  const sotw = await s1(false);
  row(
    `${tag}, SotW`,
    'initial sync, all streams ACKed',
    `${ms(sotw.syncMs)} (${sotw.syncedStreams} streams)`,
    '<= 3 s',
    ok(sotw.syncMs <= 3000),
  );
  row(
    `${tag}, SotW`,
    'one endpoint change -> all ACKed, p50 / p99 (50 changes)',
    `${ms(p(sotw.single, 50))} / ${ms(p(sotw.single, 99))}${sotw.singleMissed ? `, ${sotw.singleMissed} missed` : ''}`,
    'p99 <= 100 ms',
    ok(p(sotw.single, 99) <= 100 && !sotw.singleMissed),
  );
  rateRow(`${tag}, SotW`, sotw);
  row(
    `${tag}, SotW`,
    'shim RSS after the run (after a full GC); load generator CPU',
    `${mb(sotw.rssBytes)}; ${sotw.loadgenCpu.toFixed(1)} s`,
    'report',
    '',
  );
}

if (runs('delta')) {
  const delta = await s1(true);
  row(
    `${tag}, delta`,
    'initial sync, all streams ACKed',
    `${ms(delta.syncMs)} (${delta.syncedStreams} streams)`,
    '<= 3 s',
    ok(delta.syncMs <= 3000),
  );
  row(
    `${tag}, delta`,
    'one endpoint change -> all ACKed, p50 / p99 (50 changes)',
    `${ms(p(delta.single, 50))} / ${ms(p(delta.single, 99))}${delta.singleMissed ? `, ${delta.singleMissed} missed` : ''}`,
    'p99 <= 100 ms',
    ok(p(delta.single, 99) <= 100 && !delta.singleMissed),
  );
  rateRow(`${tag}, delta`, delta);
  row(
    `${tag}, delta`,
    'one endpoint change: bytes sent per originate stream',
    `${(delta.deltaBytesPerStream ?? NaN).toFixed(0)} B`,
    '<= 2 KB',
    ok((delta.deltaBytesPerStream ?? Infinity) <= 2048),
  );
  row(
    `${tag}, delta`,
    'shim RSS after the run (after a full GC); load generator CPU',
    `${mb(delta.rssBytes)}; ${delta.loadgenCpu.toFixed(1)} s`,
    'report',
    '',
  );
}

if (!args.includes('--no-peer') && runs('peer')) {
  if (!fs.existsSync(peerBinary)) log(`no peer binary at ${peerBinary}: run make bench (it builds it)`);
  else {
    const peer = await startPeer(S1.services);
    log('go-control-plane S1 sotw: started');
    const g = await run(peer, { ...S1, delta: false, changes: 50, rate: 20, rateSeconds: 0 });
    await peer.stop();
    // The same run for the shim without the rate part, so CPU seconds compare like for like.
    const server = await startShim(S1.services);
    const s = await run(server, { ...S1, delta: false, changes: 50, rate: 20, rateSeconds: 0 });
    await server.stop();
    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    row(
      'S1 vs go-control-plane (SotW)',
      'initial sync: shim / peer',
      `${ms(s.syncMs)} / ${ms(g.syncMs)}`,
      'report',
      '',
    );
    row(
      'S1 vs go-control-plane (SotW)',
      'convergence p99: shim / peer (ratio)',
      `${ms(p(s.single, 99))} / ${ms(p(g.single, 99))}${g.singleMissed ? ` (${g.singleMissed} missed)` : ''} (${ratio(p(s.single, 99), p(g.single, 99))})`,
      '<= 1.0',
      ok(p(s.single, 99) <= p(g.single, 99)),
    );
    row(
      'S1 vs go-control-plane (SotW)',
      'CPU seconds (sync + 50 changes): shim / peer (ratio)',
      `${s.cpuSeconds.toFixed(1)} / ${g.cpuSeconds.toFixed(1)} (${ratio(s.cpuSeconds, g.cpuSeconds)})`,
      '<= 1.0',
      ok(s.cpuSeconds <= g.cpuSeconds),
    );
    row(
      'S1 vs go-control-plane (SotW)',
      'RSS: shim / peer (ratio)',
      `${mb(s.rssBytes)} / ${mb(g.rssBytes)} (${ratio(s.rssBytes, g.rssBytes)})`,
      '<= 1.0',
      ok(s.rssBytes <= g.rssBytes),
    );
  }
}

if (runs('s2')) {
  const S2 = { services: n(10000), originate: n(91), terminate: n(9) };
  const server = await startShim(S2.services);
  log(`S2 (${S2.services} Services, ${S2.originate}+${S2.terminate} streams): started`);
  const r = await run(server, { ...S2, delta: false, changes: 5, rate: 0, rateSeconds: 0 });
  await sleep(2000);
  await server.collect?.();
  const rss = rssBytes(server.pid);
  const memory = await server.stats?.();
  if (memory) log(`S2 shim memory: ${JSON.stringify(memory)}`);
  await server.stop();
  row(
    `S2 (${S2.services} svc, ${S2.originate}+${S2.terminate} streams)`,
    'shim RSS after sync (sync time)',
    `${mb(rss)} (${ms(r.syncMs)})`,
    '<= 200 MB',
    ok(rss <= 200e6),
  );
}

if (runs('idle')) {
  // Idle streams: a small configuration, 1,000 streams that only ACK, then 1,000 more. The figure is
  // the second thousand's cost (the marginal cost of one more Envoy): the first thousand also pays
  // for one-time growth (V8's young generation, code, pools) that more Envoys do not repeat.
  const server = await startShim(10);
  const count = n(1000);
  const { streamSpecs } = await import('./control-plane.js');
  const connect = async (from: number) => {
    const gen = new Child('loadgen.ts');
    await gen.next('ready');
    await gen.ask(
      {
        cmd: 'connect',
        address: server.xds,
        delta: false,
        streams: streamSpecs(count, 0).map((s) => ({ ...s, id: `${s.id}-${from}` })),
      },
      'connected',
    );
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
  row(
    `idle streams (SotW, 10 svc)`,
    `RSS added per connected stream (streams ${count + 1}-${2 * count}; first ${count}: ${((middle - start) / count / 1024).toFixed(1)} KB)`,
    `${(perStream / 1024).toFixed(1)} KB`,
    '<= 50 KB',
    ok(perStream <= 50 * 1024),
  );
}

if (!args.includes('--no-dataplane') && runs('dataplane')) for (const r of await runDataPlane(scale)) row(...r);
if (!args.includes('--no-dataplane') && runs('mtls')) for (const r of await runDataPlaneMtls(scale)) row(...r);

const widths = [0, 1, 2, 3, 4].map((i) =>
  Math.max(...[['scenario', 'figure', 'measured', 'goal', ''], ...rows].map((r) => r[i]!.length)),
);
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log(line(['scenario', 'figure', 'measured', 'goal', '']));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
process.exit(0);
