// 1,000 streams that send a request and never read, beside a healthy Envoy: the healthy one gets every
// change within 1 s, the stuck ones hold only their own bounded buffers, and after the deadline they
// are cut with a status that says why and counted in /metrics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { RawAdsConnection, sotwRequest, type RawAdsStream } from '../helpers/raw-ads.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';

let shim: TestShim;
const services = 150;
const stuckCount = 1000;
const cutAfterMs = 8000;
const connections: RawAdsConnection[] = [];
let healthy: AdsClient | undefined;

const svc = (i: number, ip = `10.5.${i >> 8}.${i & 255}`) =>
  serviceYaml({
    name: `s${i}`,
    namespace: 'stuck',
    clusterIP: `10.98.${i >> 8}.${i & 255}`,
    port: 7000 + i,
    endpoints: [{ ip, port: 8080 }],
  });

beforeAll(async () => {
  shim = await startShim(Object.fromEntries(Array.from({ length: services }, (_, i) => [`s${i}.yaml`, svc(i)])), {
    writeBudget: { cutAfterMs },
  });
});

afterAll(async () => {
  healthy?.close();
  for (const c of connections) c.close();
  await shim.stop();
});

const metric = async (sample: string) => {
  const text = await (await fetch(`${shim.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
};

describe('slow readers', () => {
  it('beside 1,000 streams that never read, a healthy client gets each change within 1 s; they are cut', async () => {
    healthy = new AdsClient(shim.xdsAddress, { id: 'healthy', metadata: originateMeta });
    healthy.autoAck = true;
    healthy.lazy = true;
    healthy.send('cluster');
    healthy.send('listener');
    healthy.send('endpoint', {
      names: Array.from({ length: services }, (_, j) => `originate/stuck/s${j}/${7000 + j}`),
    });
    await waitFor(
      'the healthy client synced',
      () =>
        healthy!.responses.some((r) => r.kind === 'endpoint') && healthy!.responses.some((r) => r.kind === 'listener'),
      20_000,
    );

    // 20 connections of 50 streams each: each asks for every cluster and listener, then reads nothing.
    const stuck: RawAdsStream[] = [];
    for (let c = 0; c < stuckCount / 50; c++) {
      const conn = new RawAdsConnection(shim.xdsAddress);
      connections.push(conn);
      for (let i = 0; i < 50; i++) {
        const s = conn.open('StreamAggregatedResources', false);
        s.write(sotwRequest({ kind: 'cluster', node: { id: `stuck-${c}-${i}`, metadata: originateMeta } }));
        s.write(sotwRequest({ kind: 'listener' }));
        stuck.push(s);
      }
    }
    await waitFor('1,000 stuck streams connected', () => shim.shim.xds.streams.size === stuckCount + 1, 30_000);
    // They stay stuck: changes are made while they hold their first responses unread. Timed from the
    // rebuild (the file source's settle time comes before it) to the healthy client receiving it.
    await sleep(2000);
    const times: number[] = [];
    let rebuiltAt = 0;
    shim.shim.cache.onRebuild = () => (rebuiltAt = performance.now());
    for (let k = 0; k < 5; k++) {
      const mark = healthy.responses.length;
      shim.write(`s${k}.yaml`, svc(k, `10.6.0.${k + 1}`));
      await waitFor(
        `change ${k} at the healthy client`,
        () => healthy!.responses.slice(mark).some((r) => r.kind === 'endpoint'),
        30_000,
        2,
      );
      times.push(performance.now() - rebuiltAt);
    }
    const budget = shim.shim.xds.budget;
    const blocked = [...shim.shim.xds.streams].filter((s) => s.isBlocked).length;
    console.log(
      `1,000 stuck streams: healthy client's changes (rebuild -> response) ` +
        `${times.map((t) => t.toFixed(0)).join(', ')} ms; ` +
        `${blocked} streams blocked; shared budget in flight ${budget.inFlight} of ${budget.limit} bytes`,
    );
    expect(Math.max(...times)).toBeLessThan(1000);

    // Past the deadline every stuck stream is cut (the status waits behind unread bytes, so the reset
    // is what a client that reads nothing sees) and counted; the healthy one stays.
    const cutAt = performance.now();
    await waitFor('the stuck streams cut', () => shim.shim.xds.streams.size === 1, cutAfterMs + 15_000, 100);
    const statuses = await Promise.all(stuck.map((s) => s.closed));
    console.log(
      `stuck streams cut ${((performance.now() - cutAt) / 1000).toFixed(1)} s after the changes ` +
        `(deadline ${cutAfterMs / 1000} s)`,
    );
    expect(statuses.every((s) => s.code === 4 || /RST code 8/.test(s.message))).toBe(true);
    expect(await metric('tunnel_shim_xds_stuck_streams_closed_total')).toBe(stuckCount);
    expect([...shim.shim.xds.streams].map((s) => s.node.id)).toEqual(['healthy']);
    expect(budget.inFlight).toBe(0);
    const mark = healthy.responses.length;
    shim.write('s9.yaml', svc(9, '10.6.1.9'));
    await waitFor(
      'a change after the cut',
      () => healthy!.responses.slice(mark).some((r) => r.kind === 'endpoint'),
      5000,
      2,
    );
  });
});
