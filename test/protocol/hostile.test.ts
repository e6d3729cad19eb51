// Hostile clients: what one may ask for is bounded, nothing it asked for outlives its stream, a stream
// that ends at any moment leaves nothing behind, a node id is one node, and nothing a client sends can
// write control characters to an operator's terminal or change state from a browser page.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta } from '../helpers/ads-client.js';
import { runCli, serveArgs, spawnCli } from '../helpers/cli.js';
import { CsdsClient } from '../helpers/csds-client.js';
import { retainedBytes } from '../helpers/heap.js';
import { freePort } from '../helpers/net.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { deltaRequest, RawAdsConnection, sotwRequest } from '../helpers/raw-ads.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { XdsClient, xdsModes } from '../helpers/xds-client.js';

let shim: TestShim;
const RESOURCE_EXHAUSTED = 8;
const ABORTED = 10;

beforeAll(async () => {
  shim = await startShim({
    'alpha.yaml': serviceYaml({
      name: 'alpha',
      namespace: 'h',
      clusterIP: '10.96.8.1',
      port: 7301,
      endpoints: [{ ip: '10.8.0.1', port: 80 }],
    }),
  });
});

afterAll(async () => {
  await shim.stop();
});

const metric = async (sample: string) => {
  const text = await (await fetch(`${shim.adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
};

/** Watches the cache holds for connected streams (private: read for this check only). */
const watches = () =>
  [...((shim.shim.cache as any).views as Map<string, { listeners: Set<unknown> }>).values()].reduce(
    (n, v) => n + v.listeners.size,
    0,
  );

const noStreamsLeft = () => shim.shim.xds.streams.size === 0 && shim.shim.xds.deltaStreams.size === 0;

/** 3 MiB of names (30,000 of 100 bytes): three types of them cross the 8 MiB a stream may hold. */
const wideNames = (k: string) => Array.from({ length: 30_000 }, (_, i) => `${k}-${i}-${'y'.repeat(96)}`.slice(0, 100));

function expectRefusedForNameBytes(status: { code: number; message: string }) {
  expect(status.code).toBe(RESOURCE_EXHAUSTED);
  expect(status.message).toMatch(
    /^subscriptions of this stream would hold \d+ bytes of resource names; the limit is 8388608$/,
  );
}

describe('what a client asks for is bounded and does not outlive it', () => {
  it('100 distinct lists of 10,000 names, then disconnect: the heap returns to within 4 MB', async () => {
    const before = await retainedBytes();
    const conn = new RawAdsConnection(shim.xdsAddress);
    const s = conn.open();
    const lists = 100;
    for (let k = 0; k < lists; k++) {
      const names = Array.from({ length: 10_000 }, (_, i) => `hostile-${k}-${i}-${'x'.repeat(16)}`);
      s.write(
        sotwRequest({
          kind: 'endpoint',
          names,
          node: k === 0 ? { id: 'hoarder', metadata: originateMeta } : undefined,
        }),
      );
    }
    // Requests are handled in order: the answer to a last CDS request means every list was taken in.
    s.write(sotwRequest({ kind: 'cluster' }));
    await waitFor('the CDS answer after the 100 lists', () => s.responses > 0, 60_000);
    const during = await retainedBytes();
    s.cancel();
    conn.close();
    await waitFor('the stream to be gone', noStreamsLeft);
    const after = await retainedBytes();
    console.log(
      `hostile subscriptions: retained ${(before / 1e6).toFixed(1)} MB before, ${(during / 1e6).toFixed(1)} MB ` +
        `while connected, ${(after / 1e6).toFixed(1)} MB after it left (+${((after - before) / 1e6).toFixed(2)} MB)`,
    );
    expect(after - before).toBeLessThan(4e6);
  });

  it('refuses over 100,000 names in one request: RESOURCE_EXHAUSTED naming the limit (SotW, delta)', async () => {
    const conn = new RawAdsConnection(shim.xdsAddress);
    try {
      const names = Array.from({ length: 100_001 }, (_, i) => `n${i}`);
      const sotw = conn.open();
      sotw.write(sotwRequest({ kind: 'endpoint', names, node: { id: 'greedy-sotw', metadata: originateMeta } }));
      const delta = conn.open('DeltaAggregatedResources');
      delta.write(
        deltaRequest({ kind: 'endpoint', subscribe: names, node: { id: 'greedy-delta', metadata: originateMeta } }),
      );
      const [a, b] = await Promise.all([sotw.closedWithin(20_000), delta.closedWithin(20_000)]);
      expect(a).toEqual({
        code: RESOURCE_EXHAUSTED,
        message: 'resource_names: 100001 names in one request; the limit is 100000',
      });
      expect(b).toEqual({
        code: RESOURCE_EXHAUSTED,
        message: 'DeltaDiscoveryRequest: 100001 names in one request; the limit is 100000',
      });
      await waitFor('both streams gone', noStreamsLeft);
    } finally {
      conn.close();
    }
  });

  it('refuses subscriptions holding more than 8 MiB of names per stream', async () => {
    const conn = new RawAdsConnection(shim.xdsAddress);
    try {
      // 3 MiB of names per type: the third type crosses 8 MiB.
      const s = conn.open();
      s.write(sotwRequest({ kind: 'endpoint', names: wideNames('e'), node: { id: 'wide', metadata: originateMeta } }));
      s.write(sotwRequest({ kind: 'route', names: wideNames('r') }));
      s.write(sotwRequest({ kind: 'cluster', names: wideNames('c') }));
      expectRefusedForNameBytes(await s.closedWithin(20_000));
    } finally {
      conn.close();
    }
  });

  it('delta: names unsubscribed stop counting against the 8 MiB; names held at once past it are refused', async () => {
    const conn = new RawAdsConnection(shim.xdsAddress);
    try {
      const s = conn.open('DeltaAggregatedResources');
      const node = { id: 'wide-delta', metadata: originateMeta };
      // 3 MiB subscribed and dropped four times (12 MiB in all, never more than 3 MiB at once).
      for (let round = 0; round < 4; round++) {
        const answered = s.responses;
        s.write(
          deltaRequest({ kind: 'endpoint', subscribe: wideNames(`e${round}`), ...(round === 0 ? { node } : {}) }),
        );
        await waitFor('the missing names to be reported', () => s.responses > answered || s.status !== undefined);
        expect(s.status).toBeUndefined();
        s.write(deltaRequest({ kind: 'endpoint', unsubscribe: wideNames(`e${round}`) }));
      }
      s.write(deltaRequest({ kind: 'endpoint', subscribe: wideNames('e') }));
      s.write(deltaRequest({ kind: 'route', subscribe: wideNames('r') }));
      s.write(deltaRequest({ kind: 'cluster', subscribe: wideNames('c') }));
      expectRefusedForNameBytes(await s.closedWithin(20_000));
    } finally {
      conn.close();
    }
  });
});

describe('a stream that ended leaves nothing behind', () => {
  // Issue 12 item 3. This checks the outcome, not the race it was written for: it passes on 4cc6722 (before
  // the `ended` guard in XdsServer.handle) too. With grpc-js 1.14.7 on Node 20 no read boundary for
  // HEADERS, DATA and RST_STREAM (hand-written frames, one write or split, server loop busy or not) made a
  // request arrive after its stream ended. grpc-js pauses the HTTP/2 stream on each message until it is
  // delivered, so an identity request comes before 'end' (the reset ends the readable), 'cancelled' and
  // 'close'; a gzip one still inflating when the reset arrives is dropped, never delivered.
  it('50 streams cancelled right after their first request: no ghost listed, counted or watching', async () => {
    const conn = new RawAdsConnection(shim.xdsAddress);
    try {
      for (let i = 0; i < 50; i++) {
        const s = conn.open(i % 2 ? 'DeltaAggregatedResources' : 'StreamAggregatedResources');
        const node = { id: `ghost-${i}`, metadata: originateMeta };
        s.write(i % 2 ? deltaRequest({ kind: 'cluster', node }) : sotwRequest({ kind: 'cluster', node }));
        s.cancel();
      }
      // The connection stays open (ghosts lived as long as it did); give every event time to arrive.
      await sleep(500);
      const ghosts = () =>
        [...shim.shim.xds.streams, ...shim.shim.xds.deltaStreams].filter((s) => s.node.id.startsWith('ghost-'));
      await waitFor('no ghost left', () => ghosts().length === 0, 5000).catch(() => {});
      expect(ghosts().map((s) => s.node.id)).toEqual([]);
      expect((await debugNodes(shim.adminUrl)).filter((n) => n.id.startsWith('ghost-'))).toEqual([]);
      const open = shim.shim.xds.streams.size + shim.shim.xds.deltaStreams.size;
      expect(await metric('tunnel_shim_connected_proxies{role="originate"}')).toBe(open);
      expect(watches()).toBe(open);
    } finally {
      conn.close();
    }
  });
});

describe('odd but valid requests', () => {
  it('a node metadata field without a value is ignored, not an INTERNAL error (found by fuzzing)', async () => {
    const len = (bytes: number[]) => [bytes.length, ...bytes];
    const text = (t: string) => len([...Buffer.from(t)]);
    // Struct.fields entries (key 1, Value 2; Value.string_value 3): the role, and "x" with no value.
    const role = [0x0a, ...text('tunnel-shim.io/role'), 0x12, ...len([0x1a, ...text('originate')])];
    const struct = [0x0a, ...len(role), 0x0a, ...len([0x0a, ...text('x')])];
    // Node: id 1, metadata 3; it is field 2 of the DiscoveryRequest.
    const node = [0x0a, ...text('odd'), 0x1a, ...len(struct)];
    const conn = new RawAdsConnection(shim.xdsAddress);
    try {
      const s = conn.open();
      s.write(Buffer.concat([sotwRequest({ kind: 'cluster' }), Buffer.from([0x12, ...len(node)])]));
      await waitFor('a CDS response', () => s.responses > 0 || s.status, 10_000);
      expect(s.status?.message).toBeUndefined();
      expect(s.responses).toBe(1);
    } finally {
      conn.close();
    }
  });
});

describe.each(xdsModes)('one node id is one node (%s)', (mode) => {
  it('a second stream with the same id replaces the first (ABORTED), and every view shows the node once', async () => {
    const first = new XdsClient(mode, shim.xdsAddress, { id: 'twin', metadata: originateMeta });
    const second = new XdsClient(mode, shim.xdsAddress, { id: 'twin', metadata: originateMeta });
    const csds = new CsdsClient(shim.xdsAddress);
    try {
      first.subscribe('cluster');
      await first.next('cluster');
      const replacedBefore = await metric('tunnel_shim_xds_streams_replaced_total');
      second.subscribe('cluster');
      await second.next('cluster');
      await waitFor('the first stream to be closed', () => first.error);
      expect(first.error!.code).toBe(ABORTED);
      expect(first.error!.details).toMatch(
        /^node "twin": replaced by a newer stream with the same node id from .+; node ids must be unique$/,
      );
      expect((await debugNodes(shim.adminUrl)).filter((n) => n.id === 'twin')).toHaveLength(1);
      expect((await csds.fetch()).filter((c) => c.node.id === 'twin')).toHaveLength(1);
      expect(await metric('tunnel_shim_connected_proxies{role="originate"}')).toBe(1);
      expect(await metric('tunnel_shim_xds_streams_replaced_total')).toBe(replacedBefore + 1);
      const table = await runCli(['status', '--admin-address', shim.adminUrl.replace('http://', '')]);
      expect(table.stdout.split('\n').filter((l) => l.startsWith('twin '))).toHaveLength(1);
      // The newer stream keeps working.
      second.ack(second.last());
      second.subscribe('listener');
      await second.next('listener');
    } finally {
      first.close();
      second.close();
      csds.close();
    }
    await waitFor('both gone', noStreamsLeft);
  });
});

describe('nothing from the wire reaches a terminal raw', () => {
  const evilId = 'evil\u001b[2J\u001b[31m\nforged   originate   SYNCED\r\u202e';
  const evilNack = 'bad\u001b]0;owned\u0007\nNODE   forged   row';

  it.each(xdsModes)(
    'status (table and one node) escapes control characters in node ids and NACK messages (%s)',
    async (mode) => {
      const c = new XdsClient(mode, shim.xdsAddress, { id: evilId, metadata: originateMeta });
      try {
        c.nacking.set('cluster', evilNack);
        c.subscribe('cluster');
        await waitFor('the NACK recorded', async () =>
          (await debugNodes(shim.adminUrl)).some((n) => n.types.cluster?.status === 'NACKED'),
        );
        const admin = shim.adminUrl.replace('http://', '');
        const table = await runCli(['status', '--admin-address', admin]);
        const node = await runCli(['status', evilId, '--admin-address', admin]);
        for (const out of [table.stdout, node.stdout]) {
          expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
          expect(out.split('\n').some((l) => l.startsWith('forged') || l.startsWith('NODE   forged'))).toBe(false);
        }
        expect(table.stdout).toContain('evil\\x1b[2J\\x1b[31m\\nforged   originate   SYNCED\\r\\u{202e}');
        expect(table.stdout).toContain('cluster: bad\\x1b]0;owned\\x07\\nNODE   forged   row');
        expect(node.stdout).toContain('NODE evil\\x1b[2J');
      } finally {
        c.close();
      }
      await waitFor('gone', noStreamsLeft);
    },
  );
  it('pretty logs (serve --log-format pretty) escape them too', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pretty-'));
    fs.writeFileSync(
      path.join(dir, 'a.yaml'),
      serviceYaml({
        name: 'a',
        namespace: 'p',
        clusterIP: '10.96.8.2',
        port: 7302,
        endpoints: [{ ip: '10.8.0.2', port: 80 }],
      }),
    );
    const xdsPort = await freePort();
    const serve = spawnCli([...serveArgs(dir, xdsPort, await freePort()), '--log-format', 'pretty']);
    let c: AdsClient | undefined;
    try {
      await waitFor('serve to listen', () => serve.output().includes('tunnel-shim serving'), 20_000);
      c = new AdsClient(`127.0.0.1:${xdsPort}`, { id: evilId, metadata: originateMeta });
      c.nacking.set('cluster', evilNack);
      c.send('cluster');
      await waitFor('the NACK logged', () => serve.output().includes('owned'), 10_000);
      const out = serve.output();
      expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
      expect(
        out.split('\n').some((l) => l.trimStart().startsWith('forged') || l.trimStart().startsWith('NODE   forged')),
      ).toBe(false);
      expect(out).toContain('evil\\x1b[2J');
    } finally {
      c?.close();
      serve.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('admin mutations cannot come from a web page', () => {
  const url = () => `${shim.adminUrl}/debug/log-level?level=debug`;
  const level = async () =>
    ((await (await fetch(`${shim.adminUrl}/debug/log-level`)).json()) as { level: string }).level;

  it('refuses POST (a simple request a page can send), a foreign Origin, and a cross-site fetch', async () => {
    const start = await level();
    const post = await fetch(url(), { method: 'POST' });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { error: string }).error).toContain('state changes need PUT');
    const foreign = await fetch(url(), { method: 'PUT', headers: { origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(((await foreign.json()) as { error: string }).error).toContain(
      'cross-origin request refused: Origin "http://evil.example"',
    );
    const crossSite = await fetch(url(), { method: 'PUT', headers: { 'sec-fetch-site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    expect(await level()).toBe(start);
    // Its own origin, and curl (no Origin), may.
    const host = shim.adminUrl.replace('http://', '');
    expect((await fetch(url(), { method: 'PUT', headers: { origin: `http://${host}` } })).status).toBe(200);
    expect(await level()).toBe('debug');
    expect((await fetch(`${shim.adminUrl}/debug/log-level?level=${start}`, { method: 'PUT' })).status).toBe(200);
  });
});
