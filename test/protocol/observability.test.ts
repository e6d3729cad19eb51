// Metrics and logs of a running shim, read the way an operator would: scrape /metrics, change the log
// level on the admin port, read the JSON log lines. The per-stream metrics run with a state-of-the-world
// and with a delta client.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { XdsClient, xdsModes } from '../helpers/xds-client.js';

let shim: TestShim;
const lines: Record<string, any>[] = [];
const logTo = new Writable({
  write(chunk, _enc, done) {
    for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
    done();
  },
});

const alpha = (port: number) =>
  serviceYaml({
    name: 'alpha',
    namespace: 'm',
    clusterIP: '10.96.3.1',
    port,
    endpoints: [{ ip: '10.3.0.1', port: 80 }],
  });

beforeAll(async () => {
  shim = await startShim({ 'alpha.yaml': alpha(7201) }, { logLevel: 'info', logTo });
});

afterAll(async () => {
  await shim.stop();
});

async function scrape(): Promise<string> {
  const res = await fetch(`${shim.adminUrl}/metrics`);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

/** The value of one sample line, e.g. value(text, 'tunnel_shim_xds_pushes_total{type="cluster"}'). */
function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

describe.each(xdsModes)('metrics on /metrics, %s node', (mode) => {
  it('moves the push counter and the convergence histogram after a change, and names every family', async () => {
    const c = new XdsClient(mode, shim.xdsAddress, { id: `metrics-${mode}`, metadata: originateMeta });
    try {
      c.subscribe('cluster');
      c.ack(await c.next('cluster'));
      c.subscribe('listener');
      c.ack(await c.next('listener'));
      const before = await scrape();
      const mark = c.count;
      shim.write('alpha.yaml', alpha(7202));
      const cds = await c.nextSince('cluster', mark);
      c.ack(cds);
      const lds = await c.nextSince('listener', mark);
      c.ack(lds);
      const after = await waitFor('the ACK observed', async () => {
        const text = await scrape();
        return value(text, 'tunnel_shim_xds_convergence_seconds_count{type="listener"}') >
          value(before, 'tunnel_shim_xds_convergence_seconds_count{type="listener"}')
          ? text
          : undefined;
      });
      expect(value(after, 'tunnel_shim_xds_resources_sent_total{type="cluster"}')).toBe(
        value(before, 'tunnel_shim_xds_resources_sent_total{type="cluster"}') + 1,
      );
      expect(value(after, 'tunnel_shim_xds_acks_total{type="listener"}')).toBeGreaterThan(
        value(before, 'tunnel_shim_xds_acks_total{type="listener"}'),
      );
      expect(value(after, 'tunnel_shim_xds_pushes_total{type="cluster"}')).toBe(
        value(before, 'tunnel_shim_xds_pushes_total{type="cluster"}') + 1,
      );
      expect(value(after, 'tunnel_shim_xds_convergence_seconds_count{type="cluster"}')).toBe(
        value(before, 'tunnel_shim_xds_convergence_seconds_count{type="cluster"}') + 1,
      );
      // Measured from the source event to the ACK: well under a few seconds. (A lone change is applied
      // at once since the debounce became leading-edge, so there is no debounce-sized lower bound.)
      const sum =
        value(after, 'tunnel_shim_xds_convergence_seconds_sum{type="cluster"}') -
        value(before, 'tunnel_shim_xds_convergence_seconds_sum{type="cluster"}');
      expect(sum).toBeGreaterThan(0);
      expect(sum).toBeLessThan(5);
      expect(value(after, 'tunnel_shim_xds_push_seconds_count{type="listener"}')).toBeGreaterThan(
        value(before, 'tunnel_shim_xds_push_seconds_count{type="listener"}'),
      );
      expect(value(after, 'tunnel_shim_connected_proxies{role="originate"}')).toBe(1);
      expect(value(after, 'tunnel_shim_resources{type="listener"}')).toBe(1);
      expect(value(after, 'tunnel_shim_source_events_total')).toBeGreaterThan(
        value(before, 'tunnel_shim_source_events_total'),
      );
      expect(value(after, 'tunnel_shim_rebuilds_total')).toBeGreaterThanOrEqual(2);

      // A NACK and a stale nonce are counted by type.
      c.staleAnswer('listener');
      const mark2 = c.count;
      shim.write('alpha.yaml', alpha(7203));
      const rejected = await c.nextSince('listener', mark2);
      c.nack(rejected, 'no thanks');
      const nacks = 'tunnel_shim_xds_nacks_total{type="listener"}';
      const final = await waitFor('NACK counted', async () => {
        const text = await scrape();
        return value(text, nacks) === value(after, nacks) + 1 ? text : undefined;
      });
      const stale = 'tunnel_shim_xds_stale_nonces_total{type="listener"}';
      expect(value(final, stale)).toBe(value(after, stale) + 1);
      const families = [...final.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
      expect(families).toEqual(
        expect.arrayContaining([
          'tunnel_shim_connected_proxies gauge',
          'tunnel_shim_xds_pushes_total counter',
          'tunnel_shim_xds_push_seconds histogram',
          'tunnel_shim_xds_convergence_seconds histogram',
          'tunnel_shim_xds_nacks_total counter',
          'tunnel_shim_xds_stale_nonces_total counter',
          'tunnel_shim_resources gauge',
          'tunnel_shim_source_events_total counter',
          'tunnel_shim_source_errors gauge',
          'tunnel_shim_diagnostics gauge',
          'tunnel_shim_process_cpu_seconds_total counter',
          'tunnel_shim_process_resident_memory_bytes gauge',
          'tunnel_shim_nodejs_eventloop_lag_seconds gauge',
        ]),
      );
    } finally {
      c.close();
    }
  });
});

describe('log level from the admin port', () => {
  it('turns on debug protocol logs (node, type, version, nonce) at run time, and refuses unknown levels', async () => {
    const level = async () =>
      ((await (await fetch(`${shim.adminUrl}/debug/log-level`)).json()) as { level: string }).level;
    expect(await level()).toBe('info');
    const quiet = new AdsClient(shim.xdsAddress, { id: 'log-before', metadata: originateMeta });
    quiet.send('cluster');
    await quiet.next('cluster');
    quiet.close();
    expect(lines.some((l) => l.node === 'log-before' && l.msg === 'sent')).toBe(false);

    const bad = await fetch(`${shim.adminUrl}/debug/log-level?level=chatty`, { method: 'PUT' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain(
      'use one of fatal, error, warn, info, debug, trace, silent',
    );
    expect((await fetch(`${shim.adminUrl}/debug/log-level?level=debug`, { method: 'DELETE' })).status).toBe(405);

    const changed = await fetch(`${shim.adminUrl}/debug/log-level?level=debug`, { method: 'PUT' });
    expect(await changed.json()).toEqual({ level: 'debug', previous: 'info' });
    expect(await level()).toBe('debug');
    const loud = new AdsClient(shim.xdsAddress, { id: 'log-after', metadata: originateMeta });
    loud.send('cluster');
    const cds = await loud.next('cluster');
    loud.ack(cds);
    const ack = await waitFor('debug ack line', () => lines.find((l) => l.node === 'log-after' && l.msg === 'ack'));
    loud.close();
    const sent = lines.find((l) => l.node === 'log-after' && l.msg === 'sent')!;
    expect(sent).toMatchObject({ level: 20, type: 'cluster', version: cds.version_info, nonce: cds.nonce });
    expect(ack).toMatchObject({ type: 'cluster', version: cds.version_info, nonce: cds.nonce });

    await fetch(`${shim.adminUrl}/debug/log-level?level=info`, { method: 'PUT' });
    expect(await level()).toBe('info');
  });
});
