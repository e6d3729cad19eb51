// A real etcd + kube-apiserver on loopback, started the way controller-runtime's envtest does.
// No controller-manager runs: nothing creates EndpointSlices, service accounts or finishes
// namespace deletion, so tests create what they need themselves.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiException,
  ApiextensionsV1Api,
  CustomObjectsApi,
  KubeConfig,
  loadYaml,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';

export interface ApiServer {
  url: string;
  /** kubeconfig of the admin user (group system:masters). */
  kubeconfigPath: string;
  /** kubeconfig per user: admin, shim. */
  kubeconfigPaths: Record<string, string>;
  adminToken: string;
  /** Bearer token per user: admin (system:masters) and shim (no groups, nothing bound). */
  tokens: Record<string, string>;
  dir: string;
  /** A fresh KubeConfig for a user (default admin). */
  kubeConfig(user?: string): KubeConfig;
  /** Stops and starts kube-apiserver only: same port, certificates and etcd data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  log?: (line: string) => void;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BINARIES_SCRIPT = path.join(REPO_ROOT, 'scripts/k8s-binaries.sh');
const CRD_FILES = [path.join(REPO_ROOT, 'deploy/crds/tcproute.yaml')];

// A first build compiles kube-apiserver from source (about 15 min on 2 cores); cached: < 1 s.
const BUILD_TIMEOUT_MS = 45 * 60_000;
const ETCD_READY_MS = 30_000;
const APISERVER_READY_MS = 90_000;
const CRD_READY_MS = 30_000;
const STOP_GRACE_MS = 15_000;

const DIR_PREFIX = 'kube-harness-';

const execFileP = promisify(execFile);

/** Processes still running, killed synchronously if this node process exits without stop(). */
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
  for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
});

export async function startApiServer(opts: HarnessOptions = {}): Promise<ApiServer> {
  const log = opts.log ?? (() => {});
  const bins = await ensureBinaries(log);
  await removeOrphanDirs();
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  liveDirs.add(dir);
  await writeFile(`${dir}/owner.pid`, String(process.pid));
  let etcd: Proc | undefined;
  let apiserver: Proc | undefined;
  try {
    const [etcdPort, peerPort, apiPort] = (await freePorts(3)) as [number, number, number];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    etcd = startProc(
      'etcd',
      bins.etcd,
      [
        `--data-dir=${dir}/etcd`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        // Test data is thrown away: skipping fsync makes every write much faster.
        '--unsafe-no-fsync',
      ],
      log,
    );
    await waitReady(etcd, `${etcdUrl}/health`, undefined, ETCD_READY_MS);

    const tokens = { admin: token(), shim: token() };
    // Columns: token,user,uid,"groups". The shim user has no groups: RBAC tests bind it.
    await writeFile(
      `${dir}/tokens.csv`,
      `${tokens.admin},admin,uid-admin,"system:masters"\n${tokens.shim},shim,uid-shim\n`,
      { mode: 0o600 },
    );
    await execFileP('openssl', ['genrsa', '-out', `${dir}/sa.key`, '2048']);
    await execFileP('openssl', ['rsa', '-in', `${dir}/sa.key`, '-pubout', '-out', `${dir}/sa.pub`]);

    const url = `https://127.0.0.1:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      // Loopback on purpose; the endpoint reconciler would reject a loopback IP, so it is off.
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      // The self-signed serving cert (SAN 127.0.0.1) is made here once and reused on restart.
      `--cert-dir=${dir}/certs`,
      '--service-cluster-ip-range=10.0.0.0/16',
      '--authorization-mode=RBAC',
      `--token-auth-file=${dir}/tokens.csv`,
      // No controller-manager mints default service accounts, so this plugin would block pods.
      '--disable-admission-plugins=ServiceAccount',
      '--allow-privileged=true',
      `--service-account-issuer=${url}`,
      `--service-account-key-file=${dir}/sa.pub`,
      `--service-account-signing-key-file=${dir}/sa.key`,
    ];
    const startApi = async (): Promise<Proc> => {
      const p = startProc('kube-apiserver', bins.apiserver, apiArgs, log);
      await waitReady(p, `${url}/healthz`, tokens.admin, APISERVER_READY_MS);
      return p;
    };
    apiserver = await startApi();

    const ca = await readFile(`${dir}/certs/apiserver.crt`);
    const kubeconfigPaths: Record<string, string> = {};
    for (const [user, tok] of Object.entries(tokens)) {
      const file = `${dir}/kubeconfig${user === 'admin' ? '' : `-${user}`}`;
      await writeFile(file, kubeconfigYaml(url, ca, user, tok), { mode: 0o600 });
      kubeconfigPaths[user] = file;
    }
    const kubeConfig = (user = 'admin'): KubeConfig => {
      const file = kubeconfigPaths[user];
      if (!file) throw new Error(`no kubeconfig for user ${user}`);
      const kc = new KubeConfig();
      kc.loadFromFile(file);
      return kc;
    };
    const crds = await installCrds(kubeConfig(), log);
    await warmCrds(kubeConfig(), crds);

    let stopped = false;
    const server: ApiServer = {
      url,
      kubeconfigPath: `${dir}/kubeconfig`,
      kubeconfigPaths,
      adminToken: tokens.admin,
      tokens,
      dir,
      kubeConfig,
      async restart() {
        if (apiserver) await stopProc(apiserver);
        apiserver = undefined;
        apiserver = await startApi();
        await warmCrds(kubeConfig(), crds);
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        if (apiserver) await stopProc(apiserver);
        if (etcd) await stopProc(etcd);
        await rm(dir, { recursive: true, force: true });
        liveDirs.delete(dir);
      },
    };
    return server;
  } catch (err) {
    if (apiserver) await stopProc(apiserver);
    if (etcd) await stopProc(etcd);
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
    throw err;
  }
}

/** A node killed by SIGKILL leaves its temp dir (its servers die by pdeathsig): sweep those. */
async function removeOrphanDirs(): Promise<void> {
  for (const name of await readdir(os.tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = path.join(os.tmpdir(), name);
    const pid = Number(await readFile(`${dir}/owner.pid`, 'utf8').catch(() => ''));
    if (!pid || pidAlive(pid)) continue;
    await rm(dir, { recursive: true, force: true });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs scripts/k8s-binaries.sh (cached: instant; otherwise builds) and returns both paths. */
async function ensureBinaries(log: (l: string) => void): Promise<{ apiserver: string; etcd: string }> {
  const cmd = `bash ${BINARIES_SCRIPT}`;
  const tail: string[] = [];
  const { code, stdout } = await new Promise<{ code: number | string; stdout: string }>((resolve, reject) => {
    const p = spawn('bash', [BINARIES_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    onLines(p.stderr, (l) => {
      log(`[k8s-binaries] ${l}`);
      pushTail(tail, l);
    });
    const timer = setTimeout(() => p.kill('SIGTERM'), BUILD_TIMEOUT_MS);
    p.on('error', reject);
    p.on('close', (c, sig) => {
      clearTimeout(timer);
      resolve({ code: c ?? `signal ${sig ?? '?'}`, stdout: out });
    });
  });
  const apiserver = /^KUBE_APISERVER=(.+)$/m.exec(stdout)?.[1];
  const etcd = /^ETCD=(.+)$/m.exec(stdout)?.[1];
  if (code !== 0 || !apiserver || !etcd) {
    throw new Error(`\`${cmd}\` failed (exit ${code}; timeout ${BUILD_TIMEOUT_MS / 60_000} min):\n${tail.join('\n')}`);
  }
  return { apiserver, etcd };
}

interface Proc {
  name: string;
  child: ChildProcess;
  tail: string[];
  exited: Promise<void>;
  exitInfo?: string;
}

function startProc(name: string, bin: string, args: string[], log: (l: string) => void): Proc {
  // setpriv --pdeathsig: the kernel SIGTERMs the server even if node dies by SIGKILL.
  const child = spawn('setpriv', ['--pdeathsig', 'SIGTERM', '--', bin, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  const proc: Proc = { name, child, tail: [], exited: Promise.resolve() };
  const onLine = (l: string): void => {
    pushTail(proc.tail, l);
    log(`[${name}] ${l}`);
  };
  onLines(child.stdout!, onLine);
  onLines(child.stderr!, onLine);
  proc.exited = new Promise((resolve) => {
    child.on('error', (e) => {
      proc.exitInfo = `failed to start: ${e.message}`;
      live.delete(child);
      resolve();
    });
    child.on('exit', (code, sig) => {
      proc.exitInfo = `exited with ${code ?? sig}`;
      live.delete(child);
      resolve();
    });
  });
  return proc;
}

async function stopProc(p: Proc): Promise<void> {
  if (p.exitInfo === undefined) p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), STOP_GRACE_MS);
  await p.exited;
  clearTimeout(timer);
}

/** Polls url until 200; fails early if the process dies, late with the stderr tail. */
async function waitReady(p: Proc, url: string, bearer: string | undefined, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (p.exitInfo !== undefined) {
      throw new Error(`${p.name} ${p.exitInfo} before ${url} was ready; last output:\n${p.tail.join('\n')}`);
    }
    last = await probe(url, bearer);
    if (last === '200') return;
    await sleep(250);
  }
  await stopProc(p);
  throw new Error(
    `${p.name}: ${url} not ready after ${timeoutMs / 1000} s (last: ${last}); ` + `last output:\n${p.tail.join('\n')}`,
  );
}

function probe(url: string, bearer?: string): Promise<string> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(
      url,
      {
        timeout: 2_000,
        // The serving cert is self-signed and only just made; this probe only asks "up yet?".
        rejectUnauthorized: false,
        headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
      },
      (res) => {
        res.resume();
        resolve(String(res.statusCode));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e.message));
  });
}

async function installCrds(kc: KubeConfig, log: (l: string) => void): Promise<V1CustomResourceDefinition[]> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const crds: V1CustomResourceDefinition[] = [];
  for (const file of CRD_FILES) {
    // loadYaml maps wire names to the model's (x-kubernetes-preserve-unknown-fields ->
    // x_kubernetes_preserve_unknown_fields); a plain YAML parse would have the typed client
    // drop those keys on the way out, and the server would then prune every field.
    const body = loadYaml<V1CustomResourceDefinition>(await readFile(file, 'utf8'));
    const name = body.metadata?.name ?? '';
    await api.createCustomResourceDefinition({ body });
    await poll(`CRD ${name} Established`, CRD_READY_MS, async () => {
      const crd = await api.readCustomResourceDefinition({ name });
      return crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
    });
    log(`[harness] CRD ${name} established`);
    crds.push(body);
  }
  return crds;
}

/**
 * kube-apiserver builds a CRD's storage (and watch cache) on the first request for it, after
 * every start, and answers 429 "storage is (re)initializing" until that cache is filled. List
 * each served version once here so that tests (and the shim) meet a warm server.
 */
async function warmCrds(kc: KubeConfig, crds: V1CustomResourceDefinition[]): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  for (const crd of crds) {
    for (const v of crd.spec.versions.filter((x) => x.served)) {
      const what = `${crd.spec.names.plural}.${crd.spec.group}/${v.name}`;
      await poll(`list ${what} without 429`, CRD_READY_MS, async () => {
        try {
          await api.listClusterCustomObject({ group: crd.spec.group, version: v.name, plural: crd.spec.names.plural });
          return true;
        } catch (e) {
          if (e instanceof ApiException && e.code === 429) return false;
          throw e;
        }
      });
    }
  }
}

async function poll(what: string, timeoutMs: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

function kubeconfigYaml(url: string, ca: Buffer, user: string, tok: string): string {
  return (
    JSON.stringify(
      {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'harness', cluster: { server: url, 'certificate-authority-data': ca.toString('base64') } }],
        users: [{ name: user, user: { token: tok } }],
        contexts: [{ name: user, context: { cluster: 'harness', user, namespace: 'default' } }],
        'current-context': user,
      },
      null,
      2,
    ) + '\n'
  ); // JSON is valid YAML, so kubectl and client-node read it as a kubeconfig.
}

async function freePorts(n: number): Promise<number[]> {
  // Hold all listeners open together so the kernel hands out n different ports.
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function onLines(stream: NodeJS.ReadableStream, fn: (line: string) => void): void {
  let buf = '';
  stream.on('data', (b: Buffer) => {
    buf += b.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) fn(l);
  });
  stream.on('end', () => buf && fn(buf));
}

function pushTail(tail: string[], line: string): void {
  tail.push(line);
  if (tail.length > 40) tail.shift();
}

const token = (): string => randomBytes(24).toString('hex');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
