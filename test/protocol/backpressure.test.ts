// A stuck Envoy never delays the others and never makes the shim buffer more than one pending state
// for it: one client stops reading while 100 others keep converging, and memory stays flat.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { StuckClient } from '../helpers/stuck-client.js';
import { waitFor } from '../helpers/wait.js';

let shim: TestShim;
const clients: AdsClient[] = [];
const services = 200;

const svc = (i: number, ip = `10.3.${i >> 8}.${i & 255}`) =>
  serviceYaml({
    name: `b${i}`,
    namespace: 'bp',
    clusterIP: `10.97.${i >> 8}.${i & 255}`,
    port: 7000 + i,
    endpoints: [{ ip, port: 8080 }],
  });

beforeAll(async () => {
  const files: Record<string, string> = {};
  for (let i = 0; i < services; i++) files[`b${i}.yaml`] = svc(i);
  shim = await startShim(files);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await shim.stop();
});

describe('backpressure', () => {
  it('one client stops reading: 100 others converge on every change, the stuck one gets nothing queued', async () => {
    // Never reads: its first full state (~0.2 MB) already overflows its 64 KiB window.
    const stuck = new StuckClient(shim.xdsAddress, 'stuck', originateMeta, ['cluster', 'listener']);
    const stuckStream = await waitFor('the stuck stream to be blocked', () =>
      [...shim.shim.xds.streams].find((s) => s.node.id === 'stuck' && s.isBlocked),
    );
    const writesWhileBlocked = stuckStream.counters.responses;

    const others: AdsClient[] = [];
    for (let i = 0; i < 100; i++) {
      const c = new AdsClient(shim.xdsAddress, { id: `other-${i}`, metadata: originateMeta });
      c.autoAck = true;
      c.lazy = true;
      c.send('cluster');
      c.send('listener');
      c.send('endpoint', { names: Array.from({ length: services }, (_, j) => `originate/bp/b${j}/${7000 + j}`) });
      others.push(c);
      clients.push(c);
    }
    const ready = (c: AdsClient) =>
      c.responses.some((r) => r.kind === 'listener') && c.responses.some((r) => r.kind === 'endpoint');
    await waitFor('100 clients synced', () => others.every(ready), 60_000);
    global.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    const times: number[] = [];
    // S1's change: one endpoint of one Service. Timed from the rebuild (the file source's settle time
    // and the debounce come before it) to the last of the 100 clients receiving it.
    let rebuiltAt = 0;
    shim.shim.cache.onRebuild = () => (rebuiltAt = performance.now());
    for (let k = 0; k < 12; k++) {
      const marks = others.map((c) => c.responses.length);
      shim.write(`b${k}.yaml`, svc(k, `10.4.0.${k + 1}`));
      await waitFor(
        `change ${k} at all 100`,
        () => others.every((c, i) => c.responses.slice(marks[i]).some((r) => r.kind === 'endpoint')),
        30_000,
        2,
      );
      times.push(performance.now() - rebuiltAt);
    }
    // And one that adds a Service: a full LDS and CDS state for every stream, the stuck one included.
    shim.write('new.yaml', svc(1000));
    await waitFor(
      'the new Service at all 100',
      () => others.every((c) => c.responses.some((r) => r.kind === 'listener' && r.resources.length === services + 1)),
      30_000,
    );
    const heapAfter = process.memoryUsage().heapUsed;
    times.sort((a, b) => a - b);
    console.log(
      `100 streams + 1 stuck: endpoint change rebuilt -> all 100 received, p50 ${times[6]!.toFixed(0)} ms, max ` +
        `${times.at(-1)!.toFixed(0)} ms (clients in the same process); stuck stream: ` +
        `${stuckStream.counters.responses} responses, ${stuckStream.counters.bytes} bytes, ` +
        `blocked=${stuckStream.isBlocked}; heap ${(heapBefore / 1e6).toFixed(0)} -> ` +
        `${(heapAfter / 1e6).toFixed(0)} MB`,
    );
    // The stuck stream was blocked by the transport and was written nothing while blocked.
    expect(stuckStream.isBlocked).toBe(true);
    expect(stuckStream.counters.responses).toBe(writesWhileBlocked);
    expect(stuckStream.counters.blocked).toBe(1);
    // How fast is make bench's to say (S1, out of process); here every change reached all 100 within the
    // bounded waits above while the stuck stream stayed blocked.
    expect(times.at(-1)!).toBeLessThan(1000);
    // The heap here holds the 100 test clients' received responses too; the shim's share stays bounded.
    expect(heapAfter - heapBefore).toBeLessThan(64e6);
    // Resumed, it gets the latest state once (not twelve queued ones) and converges.
    stuck.resume();
    const latest = await waitFor('the stuck client to get the latest listeners', () =>
      stuck.responses.find((r) => r.kind.endsWith('Listener') && r.resources === services + 1),
    );
    expect(latest).toBeDefined();
    // What was in flight when it blocked, then the latest CDS and LDS once: never the twelve states between.
    expect(stuckStream.counters.responses - writesWhileBlocked).toBeLessThanOrEqual(2);
    stuck.close();
  });

  it('a spent write budget makes streams wait before writing, and stuck Envoys stop counting against it', async () => {
    // A budget smaller than three full states, and a short time after which unread bytes stop counting.
    const small = await startShim(
      Object.fromEntries(Array.from({ length: services }, (_, i) => [`b${i}.yaml`, svc(i)])),
      { writeBudget: { bytes: 128 * 1024, stuckAfterMs: 1000 } },
    );
    const stuck = Array.from(
      { length: 4 },
      (_, i) => new StuckClient(small.xdsAddress, `stuck-${i}`, originateMeta, ['cluster', 'listener']),
    );
    try {
      await waitFor(
        'four stuck streams',
        () => [...small.shim.xds.streams].filter((s) => s.node.id.startsWith('stuck') && s.isBlocked).length === 4,
      );
      const budget = small.shim.xds.budget;
      // In flight never exceeds the budget by more than the responses that crossed it.
      expect(budget.inFlight).toBeLessThan(budget.limit + 4 * 256 * 1024);
      const healthy = new AdsClient(small.xdsAddress, { id: 'healthy', metadata: originateMeta });
      clients.push(healthy);
      healthy.autoAck = true;
      healthy.lazy = true;
      const t0 = performance.now();
      healthy.send('cluster');
      healthy.send('listener');
      await waitFor(
        'the healthy client to get every listener',
        () => healthy.responses.some((r) => r.kind === 'listener' && r.resources.length === services),
        15_000,
      );
      const waited = performance.now() - t0;
      console.log(
        `4 stuck streams spent a 128 KiB budget; a healthy stream got its full state after ${waited.toFixed(0)} ` +
          `ms; in flight now ${budget.inFlight} bytes`,
      );
      // It waited for the stuck bytes to stop counting (1 s), not forever.
      expect(waited).toBeGreaterThan(500);
      expect(waited).toBeLessThan(10_000);
    } finally {
      for (const s of stuck) s.close();
      await small.stop();
    }
  });
});
