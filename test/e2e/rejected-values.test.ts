// Values Envoy rejects, or accepts and then fails every connection with, through real Envoys: each one
// becomes a diagnostic naming file, line, object and field; no Envoy NACKs anything (the shim's view
// and Envoy's own update_rejected stats), and the last good configuration keeps carrying bytes.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { debugNodes } from '../helpers/nodes.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
let echo: EchoServer;
let port: number;
let tunnelPort: number;

const annotations = (extra: Record<string, string> = {}) => ({
  'tunnel-shim.io/tunnel-port': String(tunnelPort),
  'tunnel-shim.io/idle-timeout': '30s',
  'tunnel-shim.io/headers-to-add': '{x-tenant: blue}',
  ...extra,
});
const yaml = (extra: Record<string, string> = {}) =>
  serviceYaml({
    name: 'vals',
    namespace: 'e2e',
    clusterIP: '10.96.9.1',
    port,
    annotations: annotations(extra),
    endpoints: [{ ip: '127.0.0.2', port: echo.port }],
  });
const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

async function diagnostics(): Promise<string[]> {
  return ((await (await fetch(`${shim.adminUrl}/debug/diagnostics`)).json()) as { text: string }[]).map((d) => d.text);
}

/** Both Envoys ACKed the latest of every type, and none ever NACKed (shim's record and Envoy's own stats). */
async function noNacks(): Promise<void> {
  const nodes = await waitFor(
    'both Envoys to ACK the latest config',
    async () => {
      const all = await debugNodes(shim.adminUrl);
      return all.length === 2 && all.every((n) => Object.values(n.types).every((t) => t.status === 'SYNCED')) && all;
    },
    20_000,
  );
  for (const n of nodes) for (const t of Object.values(n.types)) expect(t.lastNack, `${n.id}`).toBeNull();
  for (const envoy of [originator, terminator]) {
    for (const stat of ['listener_manager.lds.update_rejected', 'cluster_manager.cds.update_rejected']) {
      expect(await envoy.stat(stat), `${envoy.name} ${stat}`).toBe(0);
    }
  }
}

beforeAll(async () => {
  [port, tunnelPort] = [await freePort(), await freePort()];
  echo = await startEcho('127.0.0.2', await freePort('127.0.0.2'), 'backend');
  shim = await startShim({ 'svc.yaml': yaml() });
  [originator, terminator] = await Promise.all([
    startEnvoy({ role: 'originate', nodeId: 'originator', xdsAddress: shim.xdsAddress, listenAddress: '127.0.0.1' }),
    startEnvoy({ role: 'terminate', nodeId: 'terminator', xdsAddress: shim.xdsAddress }),
  ]);
  await waitFor(
    'the tunnel',
    () =>
      roundTrip(port).then(
        () => true,
        () => false,
      ),
    20_000,
    100,
  );
  await noNacks();
});

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop()]);
  await shim?.stop();
  await echo?.close();
});

describe('values Envoy rejects become diagnostics; the last good configuration keeps serving', () => {
  const cases: [string, Record<string, string>, string, RegExp][] = [
    [
      'an idle timeout longer than Envoy holds (Envoy NACKed it: Duration out-of-range)',
      { 'tunnel-shim.io/idle-timeout': '99999999999h' },
      'idle-timeout',
      /"99999999999h" is longer than Envoy accepts/,
    ],
    [
      'a hostname with a space (Envoy accepted it, then every CONNECT failed)',
      { 'tunnel-shim.io/hostname': 'a b.example:443' },
      'hostname',
      /" " is not allowed in a host name/,
    ],
    [
      'a header value with a lone surrogate (a "\\ud800" escape in the map)',
      { 'tunnel-shim.io/headers-to-add': '{x-tenant: "\\ud800"}' },
      'headers-to-add',
      /is not valid UTF-8/,
    ],
    [
      'a header value with a control character',
      { 'tunnel-shim.io/headers-to-add': '{x-tenant: "a\u0007b"}' },
      'headers-to-add',
      /control character/,
    ],
  ];
  for (const [what, extra, annotation, message] of cases) {
    it(what, async () => {
      const text = yaml(extra);
      shim.write('svc.yaml', text);
      const line = lineOf(text, `tunnel-shim.io/${annotation}`);
      const expected =
        `error: ${shim.dir}/svc.yaml:${line}: Service e2e/vals: ` +
        `metadata.annotations["tunnel-shim.io/${annotation}"]: `;
      const found = await waitFor(
        `the diagnostic on ${annotation}`,
        async () => (await diagnostics()).find((d) => d.startsWith(expected)),
        10_000,
      );
      expect(found).toMatch(message);
      expect(await diagnostics()).toContain(
        `warning: ${shim.dir}/svc.yaml:1: Service e2e/vals: serving the last good configuration of this Service ` +
          `until the errors are fixed`,
      );
      await noNacks();
      expect(await roundTrip(port)).toMatch(/^backend\n/);
      shim.write('svc.yaml', yaml());
      await waitFor('the diagnostics to clear', async () => (await diagnostics()).length === 0, 10_000);
    });
  }

  it(
    'a byte that is not UTF-8 in the file: an error naming the line, the file keeps its last good ' + 'objects',
    async () => {
      const text = yaml({ 'tunnel-shim.io/headers-to-add': '{x-tenant: bluee}' });
      fs.writeFileSync(`${shim.dir}/.svc.yaml.tmp`, Buffer.from(text.replace('bluee', 'blu\xff'), 'latin1'));
      fs.renameSync(`${shim.dir}/.svc.yaml.tmp`, `${shim.dir}/svc.yaml`);
      const line = lineOf(text, 'bluee');
      const found = await waitFor(
        'the file diagnostic',
        async () => (await diagnostics()).find((d) => d.startsWith(`error: ${shim.dir}/svc.yaml:${line}: `)),
        10_000,
      );
      expect(found).toMatch(/is not valid UTF-8: byte 0xff/);
      await noNacks();
      expect(await roundTrip(port)).toMatch(/^backend\n/);
      const config = await (await fetch(`${shim.adminUrl}/debug/config?node=originator`)).text();
      expect(config).toContain('"blue"');
      expect(config).not.toContain('\ufffd');
    },
  );
});
