// The live topology page (/ui) in a real headless Chromium, against a shim with real Envoys: it follows
// file changes and NACKs live, shows whatever a client sends as text, and leaves a screenshot of a
// demo-like setup in test-output/ui/.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, terminateMeta } from '../helpers/ads-client.js';
import { launchBrowser, outputDir } from '../helpers/browser.js';
import { repo } from '../helpers/repo.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

let shim: TestShim;
let browser: Browser;
let page: Page;
const envoys: EnvoyProcess[] = [];
const clients: AdsClient[] = [];
const ports: Record<string, number> = {};

function tcpRoute(namespace: string, parent: string, backends: [string, number, number][]): string {
  return YAML.stringify({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'TCPRoute',
    metadata: { name: `${parent}-canary`, namespace },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: parent, port: ports[parent] }],
      rules: [{ backendRefs: backends.map(([name, port, weight]) => ({ name, port, weight })) }],
    },
  });
}

/** A TCPRoute backend: a plain Service (not tunneled itself) and its endpoint. */
function backendYaml(name: string, port: number, ip: string): string {
  return serviceYaml({ name, namespace: 'shop', port, endpoints: [{ ip, port: 5432 }] }).replace(
    /\n {2}annotations:\n {4}tunnel-shim.io\/tunnel: h2/,
    '',
  );
}

function apiYaml(extra: Record<string, string> = {}): string {
  const annotations = { 'tunnel-shim.io/relay-port': String(ports.relay), ...extra };
  return serviceYaml({
    name: 'api',
    namespace: 'edge',
    clusterIP: '10.96.1.3',
    port: ports.api!,
    annotations,
    endpoints: [{ ip: '127.0.0.4', port: 8080 }],
  });
}

/** Waits in the page (polling every animation frame) until `selector` matches, at most `timeoutMs`. */
function shown(selector: string, timeoutMs = 5000) {
  return page.waitForSelector(selector, { timeout: timeoutMs });
}

beforeAll(async () => {
  for (const name of ['echo', 'db', 'dbV1', 'dbV2', 'api', 'relay', 'tunnel']) ports[name] = await freePort();
  const tunnel = { 'tunnel-shim.io/tunnel-port': String(ports.tunnel) };
  shim = await startShim({
    'echo.yaml': serviceYaml({
      name: 'echo',
      namespace: 'demo',
      clusterIP: '10.96.0.10',
      port: ports.echo!,
      annotations: tunnel,
      endpoints: [{ ip: '127.0.0.2', port: 9000 }],
    }),
    'db.yaml': [
      serviceYaml({ name: 'db', namespace: 'shop', clusterIP: '10.96.1.1', port: ports.db!, annotations: tunnel }),
      backendYaml('db-v1', ports.dbV1!, '127.0.0.3'),
      backendYaml('db-v2', ports.dbV2!, '127.0.0.5'),
      tcpRoute('shop', 'db', [
        ['db-v1', ports.dbV1!, 90],
        ['db-v2', ports.dbV2!, 10],
      ]),
    ].join('---\n'),
    'api.yaml': apiYaml(),
  });
  envoys.push(
    ...(await Promise.all([
      startEnvoy({
        role: 'originate',
        nodeId: 'demo-originator',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
      }),
      startEnvoy({ role: 'terminate', nodeId: 'demo-terminator', xdsAddress: shim.xdsAddress }),
      startEnvoy({ role: 'relay', nodeId: 'edge-relay', xdsAddress: shim.xdsAddress, listenAddress: '127.0.0.1' }),
    ])),
  );
  browser = await launchBrowser();
  page = await browser.newPage();
  await page.setViewport({ width: 1440, height: 900 });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(String(err)));
  page.on('console', (m) => void (m.type() === 'error' && problems.push(m.text())));
  await page.goto(`${shim.adminUrl}/ui`, { waitUntil: 'domcontentloaded', timeout: 15_000 });
  await shown('[data-key="demo/echo:' + ports.echo + '"]');
  // All three Envoys connected and SYNCED before the tests look at statuses.
  await page.waitForFunction(
    () => document.querySelectorAll('#nodes .node').length === 3 && !document.querySelector('#nodes .badge.STALE'),
    { timeout: 30_000 },
  );
  // The shim's first rebuild with Envoys connected runs cold code (about 0.25 s here against 5-10 ms
  // after): one change and its undo first, so the one-second test below measures the page, not that.
  shim.write('warm-up.yaml', serviceYaml({ name: 'warm-up', namespace: 'demo', port: 1, endpoints: [] }));
  await shown('[data-key="demo/warm-up:1"]');
  shim.remove('warm-up.yaml');
  await page.waitForSelector('[data-key="demo/warm-up:1"]', { hidden: true, timeout: 5000 });
  expect(problems).toEqual([]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await browser?.close();
  await Promise.all(envoys.map((e) => e.stop()));
  await shim?.stop();
});

describe('the /ui topology page', () => {
  it('shows a new Service within a second of the file change', async () => {
    const port = await freePort();
    const key = `demo/fresh:${port}`;
    expect(await page.$(`[data-key="${key}"]`)).toBeNull();
    const started = Date.now();
    shim.write(
      'fresh.yaml',
      serviceYaml({
        name: 'fresh',
        namespace: 'demo',
        clusterIP: '10.96.0.11',
        port,
        endpoints: [{ ip: '127.0.0.6', port: 9000 }],
      }),
    );
    await shown(`[data-key="${key}"]`, 1000);
    const ms = Date.now() - started;
    const row = await page.$eval(`[data-key="${key}"]`, (el) => ({
      text: el.textContent,
      visible: (el as HTMLElement).offsetParent !== null,
    }));
    expect(row.visible).toBe(true);
    expect(row.text).toContain('127.0.0.6:9000');
    expect(ms).toBeLessThan(1000);
    console.log(`new Service on the page ${ms} ms after the file was written`);
    shim.remove('fresh.yaml');
    await page.waitForSelector(`[data-key="${key}"]`, { hidden: true, timeout: 5000 });
  });

  it('shows a NACK as it happens, with the message a click away', async () => {
    const message = 'Error adding/updating listener(s) terminate/15008: <b>invalid</b> filter chain match & "quotes"';
    const client = new AdsClient(shim.xdsAddress, { id: 'pod-b-terminator', metadata: terminateMeta });
    clients.push(client);
    client.send('listener');
    const response = await client.next('listener');
    client.send('listener', { nonce: response.nonce, error: message });
    const row = await shown('#nodes .node[data-node="pod-b-terminator"] .badge.NACKED');
    expect(await row!.evaluate((el) => el.textContent)).toBe('LDS');
    // The Service stage that includes this terminator turns NACKED too.
    await shown(`[data-key="demo/echo:${ports.echo}"] button[data-role="terminate"].NACKED`);
    await page.click('#nodes .node[data-node="pod-b-terminator"]');
    const nack = await shown('#details pre.nack');
    expect(await nack!.evaluate((el) => el.textContent)).toBe(message);
    expect(await page.$('#details b')).toBeNull();
  });

  it('shows a hostile node id as text, never as markup', async () => {
    const hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
    const client = new AdsClient(shim.xdsAddress, { id: hostile, metadata: { 'tunnel-shim.io/role': 'originate' } });
    client.send('cluster');
    await client.next('cluster');
    await page.waitForFunction(
      (id) => [...document.querySelectorAll('#nodes .node')].some((n) => (n as HTMLElement).dataset.node === id),
      { timeout: 5000 },
      hostile,
    );
    const shownIds = await page.$$eval('#nodes .node-id', (els) => els.map((e) => e.textContent));
    expect(shownIds).toContain(hostile);
    // Open its details and its Service membership list: still text everywhere.
    await page.$$eval(
      '#nodes .node',
      (els, id) => (els.find((n) => (n as HTMLElement).dataset.node === id) as HTMLElement).click(),
      hostile,
    );
    await page.click(`[data-key="demo/echo:${ports.echo}"] button[data-role="originate"]`);
    await page.waitForFunction(
      (id) => [...document.querySelectorAll('.members .chip')].some((c) => c.textContent === id),
      { timeout: 5000 },
      hostile,
    );
    expect(await page.$$('main img, main script')).toHaveLength(0);
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    client.close();
    await page.click(`[data-key="demo/echo:${ports.echo}"] button[data-role="originate"]`);
    await page.waitForFunction(() => document.querySelectorAll('#nodes .node').length === 4, { timeout: 10_000 });
  });

  it('writes a screenshot of a demo-like setup: a split, a relay, a broken Service and a NACK', async () => {
    // A bad value on a running Service: it keeps its last good configuration and shows the error.
    shim.write('api.yaml', apiYaml({ 'tunnel-shim.io/idle-timeout': 'forever' }));
    await shown(`[data-key="edge/api:${ports.api}"].broken`);
    await page.click(`[data-key="demo/echo:${ports.echo}"] button[data-role="terminate"]`);
    await page.click('#nodes .node[data-node="pod-b-terminator"]');
    await shown('#details pre.nack');
    const file = path.join(outputDir('ui'), 'topology.png');
    await page.screenshot({ path: file });
    expect(fs.statSync(file).size).toBeGreaterThan(20_000);
    const diagnostics = await page.$$eval('#diagnostics li', (els) => els.map((e) => e.textContent));
    expect(diagnostics.some((d) => d?.includes('Service edge/api') && d.includes('idle-timeout'))).toBe(true);
    const split = await page.$eval(`[data-key="shop/db:${ports.db}"] .backends`, (el) => el.textContent);
    expect(split).toContain('90%');
    expect(split).toContain('10%');
  });
});

describe('the page as the built CLI serves it', () => {
  it('serves every page file from dist/ (bin/tunnel-shim.js), with its Content-Security-Policy', async () => {
    expect(fs.existsSync(path.join(repo, 'dist/src/cli/main.js')), 'dist/ is built (scripts/setup.sh)').toBe(true);
    const admin = `127.0.0.1:${await freePort()}`;
    const args = [
      'serve',
      '--source',
      `file:${path.join(repo, 'envoy-configs/demo/services.yaml')}`,
      '--log-level',
      'warn',
    ];
    args.push('--xds-address', `127.0.0.1:${await freePort()}`, '--admin-address', admin);
    const child = spawn(process.execPath, [path.join(repo, 'bin/tunnel-shim.js'), ...args], { stdio: 'ignore' });
    try {
      await waitFor('the built shim', () => fetch(`http://${admin}/readyz`).then((r) => r.ok), 15_000, 100);
      const page = await fetch(`http://${admin}/ui`);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      for (const file of (await page.text()).matchAll(/(?:src|href)="\/ui\/([\w.]+)"/g)) {
        expect((await fetch(`http://${admin}/ui/${file[1]}`)).status, file[1]).toBe(200);
      }
      for (const file of ['dom.js', 'nodes.js', 'services.js'])
        expect((await fetch(`http://${admin}/ui/${file}`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('the event stream', () => {
  it('ends with the shim: an open page does not hold up its stop', async () => {
    const other = await startShim({});
    const res = await fetch(`${other.adminUrl}/ui/events`);
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain('event: services');
    const started = Date.now();
    await other.stop();
    // One check interval (250 ms) and no keep-alive wait (5 s) after the stream ends.
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await reader.read()).done).toBe(true);
  });
});

describe('the /ui topology page at 1,000 Services and 1,000 nodes', () => {
  const namespaces = 50;
  const perNamespace = 20;
  let big: TestShim;
  let bigPage: Page;
  const terminators: AdsClient[] = [];
  const ipOf = (i: number) => `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const nsYaml = (n: number, backendPort = (i: number) => 9000 + (i % 7)) =>
    Array.from({ length: perNamespace }, (_, j) => {
      const i = n * perNamespace + j;
      return serviceYaml({
        name: `svc-${j}`,
        namespace: `ns-${String(n).padStart(2, '0')}`,
        clusterIP: `10.96.${n}.${j + 1}`,
        port: 7000,
        endpoints: [{ ip: ipOf(i), port: backendPort(i) }],
      });
    }).join('---\n');

  beforeAll(async () => {
    const files: Record<string, string> = {};
    for (let n = 0; n < namespaces; n++) files[`ns-${n}.yaml`] = nsYaml(n);
    big = await startShim(files);
    // 1,000 terminators, each bound to one Service's endpoint IP: each holds that Service's chains only,
    // so a change to one Service changes one node's status and one row of the page.
    for (let i = 0; i < namespaces * perNamespace; i++) {
      const c = new AdsClient(big.xdsAddress, {
        id: `pod-${i}.ns-${String(Math.floor(i / perNamespace)).padStart(2, '0')}`,
        metadata: { ...terminateMeta, 'tunnel-shim.io/listen-address': ipOf(i) },
      });
      c.autoAck = true;
      c.lazy = true;
      c.send('listener');
      terminators.push(c);
    }
    await waitFor(
      '1,000 terminators SYNCED',
      async () => {
        const state = (await (await fetch(`${big.adminUrl}/ui/state`)).json()) as {
          nodes: { types: Record<string, { status: string }> }[];
        };
        return state.nodes.length === 1000 && state.nodes.every((n) => n.types.listener?.status === 'SYNCED');
      },
      120_000,
      500,
    );
    bigPage = await browser.newPage();
    await bigPage.setViewport({ width: 1440, height: 900 });
  }, 240_000);

  afterAll(async () => {
    for (const c of terminators) c.close();
    await bigPage?.close();
    await big?.stop();
  });

  it('groups by namespace, searches, and rebuilds only the row of the Service that changed', async () => {
    const state = await (await fetch(`${big.adminUrl}/ui/state`)).text();
    const started = Date.now();
    await bigPage.goto(`${big.adminUrl}/ui`, { waitUntil: 'domcontentloaded', timeout: 15_000 });
    await bigPage.waitForFunction(
      () =>
        document.querySelectorAll('#services .svc').length === 1000 &&
        document.querySelectorAll('#nodes .node').length === 1000,
      { timeout: 30_000 },
    );
    const firstRender = Date.now() - started;
    // 50 namespace groups, closed at this size: the page starts as 50 lines.
    expect(
      await bigPage.$$eval('#services details.group', (els) => els.map((e) => (e as HTMLDetailsElement).open)),
    ).toEqual(Array(50).fill(false));

    // Count which rows the page rebuilds when one Service changes (its backend port).
    await bigPage.evaluate(() => {
      const w = window as unknown as { rebuilt: string[] };
      w.rebuilt = [];
      new MutationObserver((records) => {
        for (const r of records)
          if ((r.target as HTMLElement).classList?.contains('svc'))
            w.rebuilt.push((r.target as HTMLElement).dataset.key!);
      }).observe(document.getElementById('services')!, { childList: true, subtree: true });
    });
    const changedAt = Date.now();
    big.write(
      'ns-7.yaml',
      nsYaml(7, (i) => (i === 7 * perNamespace + 3 ? 9999 : 9000 + (i % 7))),
    );
    await bigPage.waitForFunction(
      () => document.querySelector('[data-key="ns-07/svc-3:7000"]')?.textContent?.includes(':9999'),
      { timeout: 5000 },
    );
    const changeShown = Date.now() - changedAt;
    await new Promise((r) => setTimeout(r, 1000)); // let the terminator's ACK and every status update land
    const rebuilt = await bigPage.evaluate(() => [...new Set((window as unknown as { rebuilt: string[] }).rebuilt)]);
    expect(rebuilt).toEqual(['ns-07/svc-3:7000']);

    await bigPage.type('#search', 'ns-07/svc-1');
    await bigPage.waitForFunction(
      () => [...document.querySelectorAll('#services .svc')].filter((e) => !(e as HTMLElement).hidden).length === 11,
      { timeout: 5000 },
    );
    const visibleGroups = await bigPage.$$eval('#services details.group', (els) =>
      els.filter((e) => !(e as HTMLElement).hidden).map((e) => (e as HTMLDetailsElement).open),
    );
    expect(visibleGroups).toEqual([true]);
    console.log(
      `1,000 Services, 1,000 nodes: state ${(state.length / 1024).toFixed(0)} KiB; page rendered in ` +
        `${firstRender} ms; a one-Service change shown in ${changeShown} ms`,
    );
  });
});
