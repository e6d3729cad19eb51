// The S2 configuration without streams: what the pipeline and the cache keep for 10,000 Services, one
// originate view and 9 terminate views, in one process, after a full GC. Deterministic, so a change to
// what is kept shows in a few seconds (the S2 step of convergence.ts measures the whole shim's RSS,
// which also holds what the streams left in the allocator). Run: node --expose-gc dist/bench/s2-heap.js
import v8 from 'node:v8';
import { SnapshotCache } from '../src/cache/cache.js';
import { ModelBuilder } from '../src/model/build.js';
import { defaultModelOptions } from '../src/model/tunnel.js';
import type { SourcedObject } from '../src/model/objects.js';
import { translate } from '../src/translate/index.js';
import { podAddress, serviceObjects } from './fixtures.js';
import { mallocHeapBytes } from './proc.js';

const services = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 10000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const heap = () => {
  gc();
  gc();
  return process.memoryUsage();
};
const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const line = (what: string, before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage) =>
  console.log(
    `${what}: heap +${mb(after.heapUsed - before.heapUsed)}, external +${mb(after.external - before.external)}`,
  );

const m0 = heap();
// As the in-memory driver holds them: objects that crossed IPC (JSON), so none share strings.
const objects: SourcedObject[] = JSON.parse(
  JSON.stringify(Array.from({ length: services }, (_, i) => serviceObjects(i)).flat()),
);
const m1 = heap();
line('source objects', m0, m1);
const builder = new ModelBuilder(defaultModelOptions);
const model = builder.build(objects);
const m2 = heap();
line('model', m1, m2);
const cache = new SnapshotCache(translate);
cache.setModel(model);
cache.watch({ role: 'originate', listenAddress: '127.0.0.1' }, () => {});
const m3 = heap();
line('originate view', m2, m3);
for (let i = 0; i < 9; i++) cache.watch({ role: 'terminate', listenAddress: podAddress(i) }, () => {});
const m4 = heap();
line('9 terminate views', m3, m4);
console.log(
  `total: heap ${mb(m4.heapUsed)} of ${mb(m4.heapTotal)} (+${mb(m4.heapUsed - m0.heapUsed)}), ` +
    `external ${mb(m4.external)}, ` +
    `rss ${mb(m4.rss)}; ${model.tunnels.length} tunnels`,
);
// Kept reachable for the snapshot (a snapshot may not count what only later code reads).
Object.assign(globalThis, { s2: { objects, builder, cache } });
if (process.argv.includes('--snapshot')) console.log(v8.writeHeapSnapshot('bench/profiles/s2-heap.heapsnapshot'));
console.log(`malloc's main heap (smaps [heap]): ${mb(mallocHeapBytes('self'))}`);
