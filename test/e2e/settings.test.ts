// Every per-Service setting (README "Annotation reference") through real Envoys: one originator, one
// terminator (2 workers) and one relay shared by the whole file, one Service per setting. Each test
// moves bytes and reads Envoy's own stats or access logs.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { Client, freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { podYaml, serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { debugNodes } from '../helpers/nodes.js';

let shim: TestShim;
let originator: EnvoyProcess;
let terminator: EnvoyProcess;
let relay: EnvoyProcess;
let bareRelay: EnvoyProcess;
const closers: (() => Promise<unknown>)[] = [];
const port: Record<string, number> = {};
let tunnelPort: number;
let busyTunnelPort: number;
let relayPort: number;
let backendPort: number;
let tlsPort: number;
let httpPort: number;
let tmp: string;
let serviceLog: string;
/** Beside the allowed folder, sharing its name as a prefix: outside it all the same. */
let strayLog: string;

const staticHostname = 'db.internal.example:5432';
const authority = (name: string) => `${name}.e2e.svc.cluster.local:${port[name]}`;
const prefix = (name: string) => `originate_e2e_${name}_${port[name]}`;
const cluster = (name: string) => `cluster.originate/e2e/${name}/${port[name]}`;

async function diagnostics(): Promise<string[]> {
  return ((await (await fetch(`${shim.adminUrl}/debug/diagnostics`)).json()) as { text: string }[]).map((d) => d.text);
}

async function synced(ids: string[]): Promise<boolean> {
  const nodes = await debugNodes(shim.adminUrl);
  return ids.every((id) => {
    const n = nodes.find((x) => x.id === id);
    return n && Object.values(n.types).length >= 2 && Object.values(n.types).every((t) => t.status === 'SYNCED');
  });
}

function startTlsEcho(host: string, dir: string): Promise<net.Server> {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      path.join(dir, 'key.pem'),
      '-out',
      path.join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=allowed.example.com',
    ],
    { stdio: 'ignore' },
  );
  const server = tls.createServer(
    { key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) },
    (s) => {
      s.write(`tls-backend saw SNI ${(s as tls.TLSSocket & { servername?: string }).servername}\n`);
      s.pipe(s);
      s.on('error', () => {});
    },
  );
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}

function startHttp(host: string, name: string): Promise<http.Server> {
  const server = http.createServer((req, res) => res.end(`${name} got ${req.method} ${req.url}\n`));
  return new Promise((resolve) => server.listen(0, host, () => resolve(server)));
}

/** An HTTP/1.1 request written by hand, so the test sees exactly what the proxy answers. */
function rawRequest(host: string, p: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = net.connect(p, host, () => s.write(request));
    s.on('data', (d) => {
      data += d.toString();
      if (!data.includes('\r\n\r\n')) return;
      resolve(data);
      s.destroy();
    });
    s.on('error', reject);
    s.setTimeout(5000, () => (s.destroy(), reject(new Error(`no answer from ${host}:${p}`))));
  });
}

/** The status a terminator answers an HTTP/2 request with, sent straight to its tunnel port. */
function terminatorStatus(headers: http2.OutgoingHttpHeaders, address = '127.0.0.2'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const client = http2.connect(`http://${address}:${tunnelPort}`);
    client.on('error', reject);
    const req = client.request(headers, { endStream: false });
    req.on('response', (h) => (resolve(Number(h[':status'])), client.close()));
    req.on('error', reject);
  });
}

/** curl runs asynchronously: the backends it reaches live in this process and must keep serving. */
async function curl(args: string[]): Promise<string> {
  return (await promisify(execFile)('curl', ['-sS', '--max-time', '5', ...args], { encoding: 'utf8' })).stdout;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'settings-e2e-'));
  serviceLog = path.join(tmp, 'logged.log');
  strayLog = `${tmp}-stray.log`;
  [tunnelPort, busyTunnelPort, relayPort] = [await freePort(), await freePort(), await freePort()];
  backendPort = await freePort('127.0.0.2');
  const echoes: EchoServer[] = [];
  for (const ip of ['127.0.0.2', '127.0.0.3', '127.0.0.4'])
    echoes.push(await startEcho(ip, backendPort, `backend-${ip}`));
  // A second backend on 127.0.0.3 for the gateway: three backends behind two terminator addresses, so
  // the terminator's round robin cannot run in step with the originator's (each terminator address has
  // its own listener, and both may sit on one worker, sharing one round robin).
  const extraGatewayBackend = await startEcho('127.0.0.3', 0, 'backend-127.0.0.3');
  echoes.push(extraGatewayBackend);
  closers.push(...echoes.map((e) => () => e.close()));
  const tlsServer = await startTlsEcho('127.0.0.2', tmp);
  tlsPort = (tlsServer.address() as net.AddressInfo).port;
  const httpServer = await startHttp('127.0.0.2', 'http-backend');
  httpPort = (httpServer.address() as net.AddressInfo).port;
  const relayHttp = await startHttp('127.0.0.1', 'relay-http-backend');
  closers.push(
    () => new Promise((r) => tlsServer.close(r)),
    () => new Promise((r) => httpServer.close(r)),
    () => new Promise((r) => relayHttp.close(r)),
  );

  const names = [
    'h1',
    'post',
    'tls',
    'static',
    'logged',
    'idle',
    'bounded',
    'retry',
    'stray',
    'sticky',
    'maglev',
    'subset',
    'fallback',
    'busy',
    'relayed',
    'gw',
    'side',
    'gwsticky',
    'gwsubset',
    'split',
    'split-hema',
    'split-taobao',
  ];
  for (const n of names) port[n] = await freePort();
  const on = { 'tunnel-shim.io/tunnel-port': String(tunnelPort) };
  const at = (...ips: string[]) => ips.map((ip) => ({ ip, port: backendPort }));
  let ipIndex = 20;
  const svc = (name: string, annotations: Record<string, string>, endpoints = at('127.0.0.2')) =>
    serviceYaml({
      name,
      namespace: 'e2e',
      clusterIP: `10.96.1.${ipIndex++}`,
      port: port[name]!,
      annotations: { ...on, ...annotations },
      endpoints,
    });
  const files: Record<string, string> = {
    'h1.yaml': svc('h1', { 'tunnel-shim.io/tunnel': 'h1' }),
    'post.yaml': svc('post', { 'tunnel-shim.io/tunnel': 'h2-post', 'tunnel-shim.io/post-path': '/tunnels/e2e' }),
    'tls.yaml': svc(
      'tls',
      { 'tunnel-shim.io/hostname': '%REQUESTED_SERVER_NAME%:443', 'tunnel-shim.io/domains': 'allowed.example.com:443' },
      [{ ip: '127.0.0.2', port: tlsPort }],
    ),
    // A static hostname: the terminator's only domain for this Service (no domains annotation).
    'static.yaml': svc('static', { 'tunnel-shim.io/hostname': staticHostname }),
    'logged.yaml': svc('logged', {
      'tunnel-shim.io/headers-to-add': '{x-tenant: blue, x-client: "%DOWNSTREAM_REMOTE_ADDRESS%"}',
      'tunnel-shim.io/propagate-response-headers': 'true',
      'tunnel-shim.io/propagate-response-trailers': 'true',
      'tunnel-shim.io/access-log': serviceLog,
      'tunnel-shim.io/access-log-format':
        'svc-log %CONNECTION_ID% %UPSTREAM_CLUSTER% %UPSTREAM_HOST% %REQ(:AUTHORITY)% tenant=%REQ(X-TENANT)% ' +
        'client=%REQ(X-CLIENT)% resp=%FILTER_STATE(envoy.tcp_proxy.propagate_response_headers:TYPED)%',
    }),
    'stray.yaml': svc('stray', { 'tunnel-shim.io/access-log': strayLog }),
    'idle.yaml': svc('idle', { 'tunnel-shim.io/idle-timeout': '1s' }),
    'bounded.yaml': svc('bounded', { 'tunnel-shim.io/max-downstream-connection-duration': '2s' }),
    // ::1 has no terminator (it listens on IPv4 only): a dead endpoint the originator must retry past.
    'retry.yaml': svc('retry', { 'tunnel-shim.io/max-connect-attempts': '3' }, at('::1', '127.0.0.2')),
    'sticky.yaml': svc(
      'sticky',
      { 'tunnel-shim.io/hash-policy': 'source-ip' },
      at('127.0.0.2', '127.0.0.3', '127.0.0.4'),
    ),
    'maglev.yaml': svc(
      'maglev',
      { 'tunnel-shim.io/hash-policy': 'source-ip', 'tunnel-shim.io/lb-policy': 'MAGLEV' },
      at('127.0.0.2', '127.0.0.3', '127.0.0.4'),
    ),
    'subset.yaml': svc(
      'subset',
      { 'tunnel-shim.io/metadata-match': '{env: hema}' },
      at('127.0.0.2', '127.0.0.3', '127.0.0.4'),
    ),
    'fallback.yaml': svc(
      'fallback',
      { 'tunnel-shim.io/metadata-match': '{env: mark}', 'tunnel-shim.io/default-subset': '{env: taobao}' },
      at('127.0.0.2', '127.0.0.3', '127.0.0.4'),
    ),
    'pods.yaml': [
      podYaml({ name: 'p2', namespace: 'e2e', ip: '127.0.0.2', labels: { env: 'hema' } }),
      podYaml({ name: 'p3', namespace: 'e2e', ip: '127.0.0.3', labels: { env: 'taobao' } }),
      podYaml({ name: 'p4', namespace: 'e2e', ip: '127.0.0.4', labels: { env: 'other' } }),
    ].join('---\n'),
    'busy.yaml': svc('busy', {
      'tunnel-shim.io/tunnel-port': String(busyTunnelPort),
      'tunnel-shim.io/max-concurrent-streams': '1',
    }),
    'relayed.yaml': svc(
      'relayed',
      {
        'tunnel-shim.io/relay-port': String(relayPort),
        'tunnel-shim.io/domains': `relayed.e2e.svc.cluster.local:${port.relayed}, *:1234`,
      },
      [{ ip: '127.0.0.2', port: httpPort }],
    ),
    'gw.yaml': svc('gw', { 'tunnel-shim.io/placement': 'gateway' }, [
      ...at('127.0.0.2', '127.0.0.3'),
      { ip: '127.0.0.3', port: extraGatewayBackend.port },
    ]),
    'side.yaml': svc('side', { 'tunnel-shim.io/placement': 'sidecar' }, at('127.0.0.2', '127.0.0.3')),
    'gwsticky.yaml': svc(
      'gwsticky',
      { 'tunnel-shim.io/placement': 'gateway', 'tunnel-shim.io/hash-policy': 'source-ip' },
      at('127.0.0.2', '127.0.0.3', '127.0.0.4'),
    ),
    'gwsubset.yaml': svc(
      'gwsubset',
      { 'tunnel-shim.io/placement': 'gateway', 'tunnel-shim.io/metadata-match': '{env: hema}' },
      at('127.0.0.2', '127.0.0.3', '127.0.0.4'),
    ),
    // A TCPRoute splits `split` 50/50 over two backend Services on the same Pods; each backend's own
    // metadata-match narrows its share to one Pod.
    'split.yaml': [
      svc('split', {}),
      serviceYaml({
        name: 'split-hema',
        namespace: 'e2e',
        clusterIP: '10.96.2.1',
        port: port['split-hema']!,
        annotations: { 'tunnel-shim.io/metadata-match': '{env: hema}' },
        endpoints: at('127.0.0.2', '127.0.0.3'),
      }).replace('tunnel-shim.io/tunnel: h2\n', ''),
      serviceYaml({
        name: 'split-taobao',
        namespace: 'e2e',
        clusterIP: '10.96.2.2',
        port: port['split-taobao']!,
        annotations: { 'tunnel-shim.io/metadata-match': '{env: taobao}' },
        endpoints: at('127.0.0.2', '127.0.0.3'),
      }).replace('tunnel-shim.io/tunnel: h2\n', ''),
      YAML.stringify({
        apiVersion: 'gateway.networking.k8s.io/v1alpha2',
        kind: 'TCPRoute',
        metadata: { name: 'split', namespace: 'e2e' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'split', port: port.split }],
          rules: [
            {
              backendRefs: [
                { name: 'split-hema', port: port['split-hema'], weight: 50 },
                { name: 'split-taobao', port: port['split-taobao'], weight: 50 },
              ],
            },
          ],
        },
      }),
    ].join('---\n'),
  };
  // Per-Service access logs only in this test's folder (serve --access-log-dir): `stray` asks for
  // a file outside it.
  shim = await startShim(files, { accessLogDirs: [tmp] });
  [terminator, originator, relay] = await Promise.all([
    startEnvoy({ role: 'terminate', nodeId: 'terminator', xdsAddress: shim.xdsAddress, concurrency: 2 }),
    startEnvoy({ role: 'originate', nodeId: 'originator', xdsAddress: shim.xdsAddress, listenAddress: '127.0.0.1' }),
    startEnvoy({
      role: 'relay',
      nodeId: 'relay',
      xdsAddress: shim.xdsAddress,
      listenAddress: '127.0.0.1',
      relayHttpBackend: `127.0.0.1:${(relayHttp.address() as net.AddressInfo).port}`,
    }),
  ]);
  // A relay without an HTTP backend, on its own address.
  bareRelay = await startEnvoy({
    role: 'relay',
    nodeId: 'bare-relay',
    xdsAddress: shim.xdsAddress,
    listenAddress: '127.0.0.6',
  });
  await waitFor('all Envoys synced', () => synced(['terminator', 'originator', 'relay', 'bare-relay']), 30_000, 100);
  expect((await diagnostics()).filter((d) => !d.includes('Service e2e/stray:'))).toEqual([]);
  await waitFor('the tunnels to work', () => roundTrip(port.side!).then(() => true), 20_000, 200);
});

afterAll(async () => {
  await Promise.all([originator?.stop(), terminator?.stop(), relay?.stop(), bareRelay?.stop()]);
  await shim?.stop();
  await Promise.all(closers.map((c) => c()));
  fs.rmSync(strayLog, { force: true });
});

describe('1. tunnel protocols', () => {
  it('h1: HTTP/1.1 CONNECT, logged by the terminator as CONNECT over HTTP/1.1', async () => {
    expect(await roundTrip(port.h1!, 'over h1\n')).toBe('backend-127.0.0.2\nover h1\n');
    const entry = await waitFor('h1 log line', () =>
      terminator.accessLog().find((e) => e.authority === authority('h1')),
    );
    expect(entry).toMatchObject({ method: 'CONNECT', protocol: 'HTTP/1.1', response_code: 200 });
  });

  it('h2-post: POST on the configured path only; CONNECT and other paths get 404', async () => {
    expect(await roundTrip(port.post!, 'over post\n')).toBe('backend-127.0.0.2\nover post\n');
    const entry = await waitFor('post log line', () =>
      terminator.accessLog().find((e) => e.authority === authority('post') && e.method === 'POST'),
    );
    expect(entry).toMatchObject({ path: '/tunnels/e2e', protocol: 'HTTP/2', response_code: 200 });
    expect(await terminatorStatus({ ':method': 'POST', ':path': '/other', ':authority': authority('post') })).toBe(404);
    expect(await terminatorStatus({ ':method': 'CONNECT', ':authority': authority('post') })).toBe(404);
  });

  it('h2: HTTP/2 CONNECT is the default', async () => {
    await roundTrip(port.side!);
    const entry = await waitFor('h2 log line', () =>
      terminator.accessLog().find((e) => e.authority === authority('side')),
    );
    expect(entry).toMatchObject({ method: 'CONNECT', protocol: 'HTTP/2', response_code: 200 });
  });
});

describe('2. the tunnel request', () => {
  it(
    'hostname %REQUESTED_SERVER_NAME%:443: SNI picks the authority; the terminator accepts only the ' + 'listed ones',
    async () => {
      const handshake = (servername: string) =>
        new Promise<string>((resolve, reject) => {
          const s = tls.connect({ host: '127.0.0.1', port: port.tls!, servername, rejectUnauthorized: false }, () =>
            s.write('hello tls\n'),
          );
          let got = '';
          s.on('data', (d) => {
            got += d.toString();
            if (!got.includes('hello tls\n')) return;
            resolve(got);
            s.destroy();
          });
          s.on('error', reject);
          s.on('close', () => reject(new Error(`closed after ${JSON.stringify(got)}`)));
        });
      expect(await handshake('allowed.example.com')).toBe('tls-backend saw SNI allowed.example.com\nhello tls\n');
      await expect(handshake('denied.example.com')).rejects.toThrow();
      const lines = await waitFor('both SNI log lines', () => {
        const l = terminator.accessLog().filter((e) => String(e.authority).endsWith('.example.com:443'));
        return l.length >= 2 ? l : undefined;
      });
      expect(lines.find((e) => e.authority === 'allowed.example.com:443')).toMatchObject({ response_code: 200 });
      expect(lines.find((e) => e.authority === 'denied.example.com:443')).toMatchObject({
        response_code: 404,
        upstream_host: null,
      });
    },
  );

  it(
    "static hostname: the CONNECT carries it, and the terminator routes it because it is the Service's only " +
      'domain',
    async () => {
      expect(await roundTrip(port.static!, 'to db\n')).toBe('backend-127.0.0.2\nto db\n');
      const entry = await waitFor('the static hostname log line', () =>
        terminator.accessLog().find((e) => e.authority === staticHostname),
      );
      expect(entry).toMatchObject({
        method: 'CONNECT',
        protocol: 'HTTP/2',
        response_code: 200,
        upstream_host: `127.0.0.2:${backendPort}`,
        upstream_cluster: `backend/e2e/static/${port.static}/127.0.0.2`,
      });
      // The domains default to the hostname alone: not the Service authority, not any other name.
      const routes = JSON.parse(await terminator.get('/config_dump?resource=dynamic_route_configs')) as {
        configs: { route_config: { name: string; virtual_hosts: { name: string; domains: string[] }[] } }[];
      };
      const hosts = routes.configs
        .flatMap((c) => c.route_config.virtual_hosts)
        .filter((h) => h.name === `e2e/static:${port.static}`);
      expect(hosts.length).toBeGreaterThan(0);
      for (const h of hosts) expect(h.domains).toEqual([staticHostname]);
      expect(await terminatorStatus({ ':method': 'CONNECT', ':authority': authority('static') })).toBe(404);
      expect(await terminatorStatus({ ':method': 'CONNECT', ':authority': 'other.internal.example:5432' })).toBe(404);
    },
  );

  it(
    'headers-to-add (static and %DOWNSTREAM_REMOTE_ADDRESS%) reach the terminator; the per-Service log ' + 'shows them',
    async () => {
      const client = await Client.connect(port.logged!);
      await client.echo('logged\n');
      const clientAddress = `127.0.0.1:${client.socket.localPort}`;
      client.close();
      const line = await waitFor('the terminator line of the per-Service log', () =>
        fs.existsSync(serviceLog)
          ? fs
              .readFileSync(serviceLog, 'utf8')
              .split('\n')
              .find((l) => l.includes('tenant=blue'))
          : undefined,
      );
      expect(line).toMatch(
        new RegExp(
          `^svc-log \\d+ backend/e2e/logged/${port.logged}/127\\.0\\.0\\.2 127\\.0\\.0\\.2:${backendPort} ` +
            `${authority('logged').replace(/\./g, '\\.')} tenant=blue client=${clientAddress} resp=-$`,
        ),
      );
      expect(await terminator.stat(`http.terminate_${tunnelPort}.downstream_rq_2xx`)).toBeGreaterThan(0);
    },
  );
});

describe('3. connection policy', () => {
  it('idle-timeout 1s closes an idle tunnel between 1s and 3s', async () => {
    const client = await Client.connect(port.idle!);
    await client.echo('idle\n');
    const started = Date.now();
    await waitFor('the idle tunnel to close', () => client.closed, 5000, 20);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThanOrEqual(3000);
    expect(await originator.stat(`tcp.${prefix('idle')}.idle_timeout`)).toBe(1);
  });

  it('max-downstream-connection-duration 2s closes a busy tunnel between 2s and 4s', async () => {
    const started = Date.now();
    const client = await Client.connect(port.bounded!);
    let n = 0;
    while (!client.closed && Date.now() - started < 6000) {
      client.socket.write(`busy ${n++}\n`);
      await sleep(100);
    }
    const elapsed = Date.now() - started;
    expect(client.received).toContain('busy 5\n');
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    expect(elapsed).toBeLessThanOrEqual(4000);
    expect(await originator.stat(`tcp.${prefix('bounded')}.max_downstream_connection_duration`)).toBe(1);
  });

  it('max-connect-attempts 3 gets past a dead endpoint: every connection succeeds', async () => {
    for (let i = 0; i < 10; i++) expect(await roundTrip(port.retry!)).toMatch(/^backend-127\.0\.0\.2\nping-/);
    expect(await originator.stat(`${cluster('retry')}.upstream_cx_connect_fail`)).toBeGreaterThan(0);
    expect(await originator.stat(`tcp.${prefix('retry')}.upstream_cx_connect_attempts_exceeded`)).toBe(0);
  });

  it(
    'serve --access-log-dir: a Service asking for a log outside the allowed folder is an error naming it and ' +
      'the field, and no Envoy writes there',
    async () => {
      expect(await diagnostics()).toEqual([
        `error: ${path.join(shim.dir, 'stray.yaml')}:9: Service e2e/stray: ` +
          `metadata.annotations["tunnel-shim.io/access-log"]: ${JSON.stringify(strayLog)} is not under a ` +
          `directory this shim allows access logs in (--access-log-dir ${tmp}); /dev/stdout and /dev/stderr are ` +
          `always allowed`,
      ]);
      // Never served: no listener on the originator, nothing on the terminator, no file.
      await expect(Client.connect(port.stray!)).rejects.toThrow(/ECONNREFUSED/);
      const listeners = await originator.get('/config_dump?resource=dynamic_listeners');
      expect(listeners).not.toContain(`originate/e2e/stray/`);
      expect(await terminator.get('/config_dump')).not.toContain(strayLog);
      expect(fs.existsSync(strayLog)).toBe(false);
      // The log inside the folder is served and written (the per-Service log tests below read it).
      expect(listeners).toContain(serviceLog);
    },
  );

  it(
    'access-log: the per-Service log has lines from both sides with connection, cluster, host and ' + 'authority',
    async () => {
      const lines = await waitFor('originate and terminate lines', () => {
        const all = fs.existsSync(serviceLog) ? fs.readFileSync(serviceLog, 'utf8').split('\n').filter(Boolean) : [];
        return all.some((l) => l.includes(' originate/e2e/logged/')) &&
          all.some((l) => l.includes(' backend/e2e/logged/'))
          ? all
          : undefined;
      });
      const originate = lines.find((l) => l.includes(' originate/e2e/logged/'))!;
      expect(originate).toMatch(
        new RegExp(
          `^svc-log \\d+ originate/e2e/logged/${port.logged} 127\\.0\\.0\\.2:${tunnelPort} - tenant=- client=- resp=`,
        ),
      );
      // propagate-response-headers: the originator kept the terminator's CONNECT response headers.
      const propagated = JSON.parse(originate.split(' resp=')[1]!) as { headers: { key: string; value: string }[] };
      expect(propagated.headers).toContainEqual({ key: ':status', value: '200' });
      expect(propagated.headers).toContainEqual({ key: 'server', value: 'envoy' });
      // The per-Service log on the terminator's shared listener carries this Service's requests only.
      expect(lines.every((l) => l.includes('/e2e/logged/'))).toBe(true);
    },
  );
});

describe('4. load balancing', () => {
  it('hash-policy source-ip: 100 connections from one source IP all reach one backend of 3', async () => {
    const seen = new Set<string>();
    for (let batch = 0; batch < 10; batch++) {
      const names = await Promise.all(
        Array.from({ length: 10 }, () => roundTrip(port.sticky!).then((r) => r.split('\n')[0]!)),
      );
      names.forEach((n) => seen.add(n));
    }
    expect(seen.size).toBe(1);
    expect(await originator.stat(`${cluster('sticky')}.upstream_rq_total`)).toBeGreaterThanOrEqual(100);
    const config = await originator.get('/config_dump?resource=dynamic_active_clusters');
    expect(config).toContain('"lb_policy": "RING_HASH"');
  });

  it(
    'hash-policy source-ip with lb-policy MAGLEV: 100 connections from one source IP all reach one backend of ' +
      '3, from another IP too',
    async () => {
      const backendsFrom = async (source: string) => {
        const seen = new Set<string>();
        for (let batch = 0; batch < 10; batch++) {
          const names = await Promise.all(
            Array.from({ length: 10 }, () =>
              roundTrip(port.maglev!, undefined, '127.0.0.1', source).then((r) => r.split('\n')[0]!),
            ),
          );
          names.forEach((n) => seen.add(n));
        }
        return [...seen];
      };
      const [one, five] = [await backendsFrom('127.0.0.1'), await backendsFrom('127.0.0.5')];
      console.log(
        `MAGLEV by source IP: 127.0.0.1 -> ${one.join(',')}, 127.0.0.5 -> ${five.join(',')} (100 connections each)`,
      );
      expect(one).toHaveLength(1);
      expect(five).toHaveLength(1);
      // The originator's own log: per source IP, one upstream host, over all 200 tunnels.
      const lines = await waitFor('maglev log lines', () => {
        const l = originator.accessLog().filter((e) => e.upstream_cluster === `originate/e2e/maglev/${port.maglev}`);
        return l.length >= 200 ? l : undefined;
      });
      for (const source of ['127.0.0.1', '127.0.0.5']) {
        const mine = lines.filter((e) => String(e.downstream_remote).startsWith(`${source}:`));
        expect(mine).toHaveLength(100);
        expect(new Set(mine.map((e) => e.upstream_host)).size).toBe(1);
      }
      // The cluster is MAGLEV: in its config, and in the stats only a Maglev load balancer keeps.
      const clusters = JSON.parse(await originator.get('/config_dump?resource=dynamic_active_clusters')) as {
        configs: { cluster: { name: string; lb_policy?: string } }[];
      };
      expect(
        clusters.configs.find((c) => c.cluster.name === `originate/e2e/maglev/${port.maglev}`)?.cluster.lb_policy,
      ).toBe('MAGLEV');
      const stats = await originator.stats();
      expect(stats.get(`${cluster('maglev')}.maglev_lb.max_entries_per_host`)).toBeGreaterThan(0);
      expect(stats.has(`${cluster('maglev')}.ring_hash_lb.size`)).toBe(false);
      expect(stats.get(`${cluster('sticky')}.ring_hash_lb.size`)).toBeGreaterThan(0);
    },
  );

  it(
    'metadata-match picks the Pods labelled env=hema; an unmatched one falls back to the default subset ' +
      'env=taobao',
    async () => {
      for (let i = 0; i < 6; i++) expect((await roundTrip(port.subset!)).split('\n')[0]).toBe('backend-127.0.0.2');
      for (let i = 0; i < 6; i++) expect((await roundTrip(port.fallback!)).split('\n')[0]).toBe('backend-127.0.0.3');
      expect(await originator.stat(`${cluster('subset')}.lb_subsets_selected`)).toBeGreaterThanOrEqual(6);
      expect(await originator.stat(`${cluster('fallback')}.lb_subsets_fallback`)).toBeGreaterThanOrEqual(6);
    },
  );
});

describe('4. load balancing at a gateway terminator, and weighted splits', () => {
  it(
    'gateway + hash-policy source-ip: the terminator hashes on the app source IP the originator ' + 'forwards',
    async () => {
      const seen = new Set<string>();
      for (let batch = 0; batch < 5; batch++) {
        const names = await Promise.all(
          Array.from({ length: 10 }, () => roundTrip(port.gwsticky!).then((r) => r.split('\n')[0]!)),
        );
        names.forEach((n) => seen.add(n));
      }
      expect(seen.size).toBe(1);
      // The originator spreads tunnels over the terminator addresses; the backend stays the same.
      const lines = await waitFor('gwsticky log lines', () => {
        const l = terminator.accessLog().filter((e) => e.authority === authority('gwsticky'));
        return l.length >= 50 ? l : undefined;
      });
      expect(new Set(lines.map((e) => String(e.downstream_local).split(':')[0])).size).toBeGreaterThan(1);
      expect(new Set(lines.map((e) => e.upstream_host)).size).toBe(1);
    },
  );

  it('gateway + metadata-match: the terminator picks the env=hema Pod', async () => {
    for (let i = 0; i < 6; i++) expect((await roundTrip(port.gwsubset!)).split('\n')[0]).toBe('backend-127.0.0.2');
    expect(
      await terminator.stat(`cluster.backend/e2e/gwsubset/${port.gwsubset}.lb_subsets_selected`),
    ).toBeGreaterThanOrEqual(6);
  });

  it(
    'TCPRoute weighted_clusters with per-cluster metadata_match: each backend share reaches only its ' + 'own Pods',
    async () => {
      const seen = new Map<string, number>();
      for (let i = 0; i < 30; i++) {
        const name = (await roundTrip(port.split!)).split('\n')[0]!;
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
      expect([...seen.keys()].sort()).toEqual(['backend-127.0.0.2', 'backend-127.0.0.3']);
      const base = `cluster.originate/e2e/split/${port.split}`;
      const hema = await originator.stat(`${base}/split-hema/${port['split-hema']}.upstream_rq_total`);
      const taobao = await originator.stat(`${base}/split-taobao/${port['split-taobao']}.upstream_rq_total`);
      expect(hema + taobao).toBe(30);
      expect(hema).toBe(seen.get('backend-127.0.0.2'));
      const lines = await waitFor('split log lines', () => {
        const l = terminator.accessLog().filter((e) => String(e.authority).startsWith('split-'));
        return l.length >= 30 ? l : undefined;
      });
      for (const e of lines) {
        const expected = String(e.authority).startsWith('split-hema.') ? '127.0.0.2' : '127.0.0.3';
        expect(String(e.upstream_host).split(':')[0]).toBe(expected);
      }
    },
  );
});

describe('5. pooling', () => {
  it(
    'max-concurrent-streams 1 opens a connection per busy stream, and the terminator spreads them evenly over ' +
      'its 2 workers',
    async () => {
      // 8 connections: the kernel's hash alone would split them 4/4 only about a quarter of the time.
      const clients = await Promise.all(Array.from({ length: 8 }, () => Client.connect(port.busy!)));
      await Promise.all(clients.map((c, i) => c.echo(`busy ${i}\n`)));
      expect(await originator.stat(`${cluster('busy')}.upstream_cx_active`)).toBe(8);
      const listener = `listener.127.0.0.2_${busyTunnelPort}`;
      const perWorker = [
        await terminator.stat(`${listener}.worker_0.downstream_cx_active`),
        await terminator.stat(`${listener}.worker_1.downstream_cx_active`),
      ];
      expect(perWorker).toEqual([4, 4]);
      // HTTP/2 keepalive on the pooled tunnel connections, so a dead terminator is noticed in seconds.
      const clusters = JSON.parse(await originator.get('/config_dump?resource=dynamic_active_clusters')) as {
        configs: { cluster: { name: string } }[];
      };
      const busy = clusters.configs.find((c) => c.cluster.name === `originate/e2e/busy/${port.busy}`);
      expect(JSON.stringify(busy)).toContain('"connection_keepalive":{"interval":"5s","timeout":"4s"}');
      expect(JSON.stringify(busy)).toContain('"max_concurrent_streams":1');
      for (const c of clients) c.close();
    },
  );
});

describe('6. relay', () => {
  it('curl --proxytunnel: caller → relay → terminator → backend; the terminator logs the authority', async () => {
    const out = await curl([
      '--proxytunnel',
      '--proxy',
      `http://127.0.0.1:${relayPort}`,
      `http://relayed.e2e.svc.cluster.local:${port.relayed}/via-relay`,
    ]);
    expect(out).toBe('http-backend got GET /via-relay\n');
    const entry = await waitFor('terminator log of the relayed CONNECT', () =>
      terminator.accessLog().find((e) => e.authority === authority('relayed')),
    );
    expect(entry).toMatchObject({ method: 'CONNECT', protocol: 'HTTP/2', response_code: 200 });
    const relayed = await waitFor('relay log', () =>
      relay.accessLog().find((e) => e.authority === authority('relayed')),
    );
    expect(relayed).toMatchObject({
      method: 'CONNECT',
      protocol: 'HTTP/1.1',
      response_code: 200,
      upstream_cluster: `relay/e2e/relayed/${port.relayed}`,
    });
  });

  it('routes an HTTP/2 CONNECT by authority suffix (*:1234)', async () => {
    const got = await new Promise<string>((resolve, reject) => {
      const client = http2.connect(`http://127.0.0.1:${relayPort}`);
      client.on('error', reject);
      const req = client.request({ ':method': 'CONNECT', ':authority': 'anything.example:1234' });
      let data = '';
      req.on('response', (h) => {
        if (h[':status'] !== 200) reject(new Error(`status ${h[':status']}`));
        req.write('GET /suffix HTTP/1.1\r\nHost: anything.example\r\nConnection: close\r\n\r\n');
      });
      req.on('data', (d) => {
        data += d.toString();
        if (!data.includes('got GET /suffix')) return;
        resolve(data);
        client.close();
      });
      req.on('error', reject);
    });
    expect(got).toContain('http-backend got GET /suffix');
    const entry = await waitFor('terminator log of the suffix authority', () =>
      terminator.accessLog().find((e) => e.authority === 'anything.example:1234'),
    );
    expect(entry).toMatchObject({ method: 'CONNECT', response_code: 200 });
  });

  it('sends plain HTTP to the configured HTTP backend and refuses unknown CONNECT authorities with 404', async () => {
    expect(await curl([`http://127.0.0.1:${relayPort}/plain`])).toBe('relay-http-backend got GET /plain\n');
    const before = await relay.stat('cluster_manager.upstream_cx_total');
    const answer = await rawRequest(
      '127.0.0.1',
      relayPort,
      'CONNECT evil.example.com:443 HTTP/1.1\r\nHost: evil.example.com:443\r\n\r\n',
    );
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    expect(await relay.stat('cluster_manager.upstream_cx_total')).toBe(before);
    // A relay without --relay-http-backend says why it will not route plain HTTP.
    const bare = await rawRequest('127.0.0.6', relayPort, 'GET /plain HTTP/1.1\r\nHost: example.com\r\n\r\n');
    expect(bare.split('\r\n')[0]).toBe('HTTP/1.1 404 Not Found');
    expect(await curl([`http://127.0.0.6:${relayPort}/plain`])).toBe(
      'tunnel-shim relay: plain HTTP is not routed here (no --relay-http-backend)\n',
    );
  });
});

describe('7. placement', () => {
  it(
    'sidecar delivers to the endpoint the originator chose; gateway balances across endpoints at the ' + 'terminator',
    async () => {
      for (let i = 0; i < 8; i++) await roundTrip(port.side!);
      const gwBackends = new Set<string>();
      for (let i = 0; i < 8; i++) gwBackends.add((await roundTrip(port.gw!)).split('\n')[0]!);
      expect([...gwBackends].sort()).toEqual(['backend-127.0.0.2', 'backend-127.0.0.3']);
      const lines = await waitFor('placement log lines', () => {
        const side = terminator.accessLog().filter((e) => e.authority === authority('side'));
        const gw = terminator.accessLog().filter((e) => e.authority === authority('gw'));
        return side.length >= 8 && gw.length >= 8 ? { side, gw } : undefined;
      });
      const ip = (a: unknown) => String(a).split(':')[0];
      for (const e of lines.side) expect(ip(e.upstream_host)).toBe(ip(e.downstream_local));
      expect(lines.gw.some((e) => ip(e.upstream_host) !== ip(e.downstream_local))).toBe(true);
      expect(lines.gw.every((e) => e.upstream_cluster === `backend/e2e/gw/${port.gw}`)).toBe(true);
    },
  );
});
