// The shim as the benchmark runs it: its own process, the real pipeline, cache and ADS server, fed by
// an in-memory source over IPC instead of YAML files. Why: the file source re-reads and re-parses
// every file on any change (it is the development source; the Kubernetes source delivers one object
// per event), so with 1,000 files it would measure YAML parsing, not the control plane. Here a
// "source change" is one IPC message carrying the changed Service's objects, handled exactly as a
// watch event would be: through the pipeline's debounce, model build, translation, encoding, push.
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import pino from 'pino';
import type { SourcedObject } from '../src/model/objects.js';
import { Shim } from '../src/shim.js';
import type { Source, SourceState } from '../src/sources/source.js';

class MemorySource implements Source {
  private readonly byService = new Map<string, SourcedObject[]>();
  private onChange?: (state: SourceState) => void;
  describe(): string {
    return 'memory:ipc';
  }
  async start(onChange: (state: SourceState) => void): Promise<void> {
    this.onChange = onChange;
    this.emit();
  }
  async stop(): Promise<void> {}
  set(updates: Record<string, SourcedObject[]>): void {
    for (const [name, objects] of Object.entries(updates)) this.byService.set(name, objects);
    if (this.onChange) this.emit();
  }
  private emit() {
    const objects: SourcedObject[] = [];
    for (const list of this.byService.values()) objects.push(...list);
    this.onChange!({ objects, diagnostics: [] });
  }
}

// BENCH_SOURCE=file:PATH or kubernetes (with KUBECONFIG): the real sources, for the scenarios that
// measure them (bench/add-remove.ts); otherwise the in-memory driver above.
const sourceSpec = process.env.BENCH_SOURCE ?? 'memory';
const source = new MemorySource();
// To stderr: stdout carries the benchmark's table.
const logger = pino({ level: process.env.BENCH_TRACE ? 'info' : 'warn' }, pino.destination(2));
const realSource: Source | undefined = sourceSpec.startsWith('file:')
  ? new (await import('../src/sources/file.js')).FileSource(sourceSpec.slice('file:'.length), logger)
  : sourceSpec === 'kubernetes'
    ? new (await import('../src/sources/kubernetes.js')).KubernetesSource({ logger })
    : undefined;
// A profile of one phase of a run (the changes, not the initial sync): profile-start / profile-stop.
const profiler = new Session();
profiler.connect();
// SIGUSR2 writes a heap snapshot (looking into memory figures).
process.on('SIGUSR2', async () =>
  process.stderr.write(
    `shim: heap snapshot ${(await import('node:v8')).writeHeapSnapshot('bench/profiles/shim.heapsnapshot')}\n`,
  ),
);
const shim = new Shim({
  source: realSource ?? source,
  xdsAddress: '127.0.0.1:0',
  adminAddress: '127.0.0.1:0',
  logger,
  // To see Envoys (and the load generator) reconnect after GOAWAY within a short run.
  maxConnectionAgeMs: process.env.BENCH_MAX_CONNECTION_AGE_MS
    ? Number(process.env.BENCH_MAX_CONNECTION_AGE_MS)
    : undefined,
});

// BENCH_TRACE=1: how long each model change takes inside the shim (rebuild + hand-off to every stream).
if (process.env.BENCH_TRACE) {
  const setModel = shim.rollout.setModel.bind(shim.rollout);
  shim.rollout.setModel = (model, changedAt) => {
    const t0 = performance.now();
    setModel(model, changedAt);
    process.stderr.write(
      `shim: change applied in ${(performance.now() - t0).toFixed(1)} ms ` +
        `(${Date.now() - (changedAt ?? Date.now())} ms after the source event)\n`,
    );
  };
}

process.on('message', async (m: { cmd: string; tag?: string; updates?: Record<string, SourcedObject[]> }) => {
  if (m.cmd === 'set') {
    source.set(m.updates!);
    return;
  }
  if (m.cmd === 'start') {
    await shim.start();
    process.send!({ cmd: 'started', xds: `127.0.0.1:${shim.xdsPort}` });
    if (process.env.BENCH_TRACE) {
      // The first 15 s: streams connected and bytes handed to gRPC, every half second.
      const t0 = performance.now();
      const timer = setInterval(() => {
        const all = [...shim.xds.streams, ...shim.xds.deltaStreams];
        const bytes = all.reduce((n, s) => n + s.counters.bytes, 0);
        const served = all.filter((s) => s.counters.responses > 0).length;
        process.stderr.write(
          `shim: +${(performance.now() - t0).toFixed(0)} ms: ${all.length} streams, ${served} answered, ` +
            `${(bytes / 1e6).toFixed(0)} MB handed to gRPC, ${(shim.xds.budget.inFlight / 1e6).toFixed(1)} MB ` +
            `in flight, rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB, heap ` +
            `${(process.memoryUsage().heapUsed / 1e6).toFixed(0)} MB, external ` +
            `${(process.memoryUsage().external / 1e6).toFixed(0)} MB\n`,
        );
        if (performance.now() - t0 > 15_000) clearInterval(timer);
      }, 500);
    }
  }
  if (m.cmd === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send!({ cmd: 'gc' });
  }
  if (m.cmd === 'heap') {
    const file = (await import('node:v8')).writeHeapSnapshot('bench/profiles/shim.heapsnapshot');
    process.send!({ cmd: 'heap', file });
  }
  if (m.cmd === 'stats')
    process.send!({
      cmd: 'stats',
      encodes: shim.cache.encoder.encodeCount,
      streams: shim.xds.streams.size,
      views: shim.cache.viewCount(),
      memory: process.memoryUsage(),
    });
  if (m.cmd === 'profile-start') {
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.start');
    // BENCH_HEAP_SAMPLING=1: also where the objects that outlive the young generation were allocated
    // (those collected by a full GC included): what the phase promotes, and so what full GCs cost.
    if (process.env.BENCH_HEAP_SAMPLING) {
      await profiler.post('HeapProfiler.enable');
      await profiler.post('HeapProfiler.startSampling', {
        samplingInterval: 16384,
        includeObjectsCollectedByMajorGC: true,
      } as object);
    }
    process.send!({ cmd: 'profiling' });
  }
  if (m.cmd === 'profile-stop') {
    const { profile } = (await profiler.post('Profiler.stop')) as { profile: object };
    const file = `bench/profiles/shim-${m.tag}-${Date.now()}.cpuprofile`;
    fs.writeFileSync(file, JSON.stringify(profile));
    if (process.env.BENCH_HEAP_SAMPLING) {
      const { profile: heap } = (await profiler.post('HeapProfiler.stopSampling')) as { profile: object };
      fs.writeFileSync(file.replace(/\.cpuprofile$/, '.heapprofile'), JSON.stringify(heap));
    }
    process.send!({ cmd: 'profiled', file });
  }
  if (m.cmd === 'metrics') process.send!({ cmd: 'metrics', text: await shim.metrics.text() });
  if (m.cmd === 'stop') {
    await shim.stop();
    process.exit(0);
  }
});
process.send!({ cmd: 'ready' });
