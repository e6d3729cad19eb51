// `tunnel-shim inject` against the real kube-apiserver, and its sidecars run the way a kubelet would
// start them: the API server accepts every injected manifest (and everything under deploy/) with a
// server-side dry run, and an injected pod's Envoys, started from the container spec with the
// kubelet's environment and `$(VAR)` expansion inside a network namespace standing in for the pod,
// connect to the shim, get their per-pod view, pass their readiness probe and carry bytes.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  KubernetesObjectApi,
  PatchStrategy,
  loadAllYaml,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { injectManifests } from '../../src/cli/inject.js';
import {
  bootstrapConfigMap,
  configMapName,
  containerName,
  defaultEnvoyImage,
  defaultXdsAddress,
  injectRoles,
} from '../../src/cli/inject-sidecar.js';
import { envoyBinary } from '../helpers/envoy.js';
import { apply, endpointSlice, service, startKubeShim, type KubeShim } from '../helpers/kube.js';
import { createNetns, type Netns } from '../helpers/netns.js';
import { repo } from '../helpers/repo.js';
import { debugNodes } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';
import { containerProcess } from './kubelet.js';
import { startApiServer, type ApiServer } from './harness.js';

const ns = 'demo';
const stringify = (v: unknown) => YAML.stringify(v, { aliasDuplicateObjects: false, lineWidth: 0 });
let api: ApiServer;
let admin: KubeConfig;

beforeAll(async () => {
  api = await startApiServer();
  admin = api.kubeConfig('admin');
  // Namespaces are created for real: a dry run of an object checks that its namespace exists.
  await apply(
    admin,
    ['demo', 'shop'].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })),
  );
}, 30 * 60_000);

afterAll(async () => {
  await api?.stop();
});

/** Server-side apply with dryRun=All: admission and validation run, nothing is stored. */
async function dryRun(objects: KubernetesObject[]): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(admin);
  for (const o of objects) {
    await client.patch(o, undefined, 'All', 'inject-test', true, PatchStrategy.ServerSideApply).catch((e: Error) => {
      throw new Error(`${o.kind} ${o.metadata?.namespace ?? ''}/${o.metadata?.name}: rejected: ${e.message}`);
    });
  }
}

const objectsOf = (text: string) =>
  (loadAllYaml(text) as KubernetesObject[]).flatMap((o) =>
    o.kind === 'List' ? (o as unknown as { items: KubernetesObject[] }).items : [o],
  );

describe('inject and deploy/ against the real kube-apiserver', () => {
  it('accepts every manifest under deploy/ (namespaces applied, the rest dry-run)', async () => {
    const top = fs.readdirSync(path.join(repo, 'deploy')).filter((f) => f.endsWith('.yaml'));
    const files = ['crds/tcproute.yaml', ...top];
    const objects = files.flatMap((f) => objectsOf(fs.readFileSync(path.join(repo, 'deploy', f), 'utf8')));
    const kinds = ['Deployment', 'Service', 'ClusterRole', 'ConfigMap', 'CustomResourceDefinition'];
    expect(objects.map((o) => o.kind)).toEqual(expect.arrayContaining(kinds));
    await apply(
      admin,
      objects.filter((o) => o.kind === 'Namespace'),
    );
    await dryRun(objects.filter((o) => o.kind !== 'Namespace'));
  });

  it('accepts every injected golden output and the bootstrap ConfigMap', async () => {
    const dir = path.join(repo, 'test/unit/inject');
    const goldens = fs.readdirSync(dir).filter((f) => f.endsWith('.golden.yaml'));
    const objects = goldens.flatMap((f) => objectsOf(fs.readFileSync(path.join(dir, f), 'utf8')));
    const kinds = ['Deployment', 'StatefulSet', 'DaemonSet', 'Pod', 'Service', 'ConfigMap'];
    expect(new Set(objects.map((o) => o.kind))).toEqual(new Set(kinds));
    await dryRun(objects);
  });

  it("accepts the README's cluster journey: deploy/try/ injected, and its namespace's ConfigMap", async () => {
    const injected = (file: string, role: 'originate' | 'terminate') => {
      const text = fs.readFileSync(path.join(repo, 'deploy/try', file), 'utf8');
      const result = injectManifests(file, text, { roles: [role], image: defaultEnvoyImage });
      expect(result.errors).toEqual([]);
      return objectsOf(result.output);
    };
    const objects = [...injected('server.yaml', 'terminate'), ...injected('client.yaml', 'originate')];
    const names = objects.map((o) => `${o.kind}/${o.metadata?.name}`);
    expect(names).toEqual(['Deployment/echo', 'Service/echo', 'Deployment/client']);
    const configMap = bootstrapConfigMap(ns, defaultXdsAddress, stringify) as unknown as KubernetesObject;
    await dryRun([...objects, configMap]);
  });
});

describe('an injected pod run as a kubelet would run it', () => {
  let pod: Netns;
  let shim: KubeShim;
  let dir: string;
  const envoys: ChildProcess[] = [];
  const podName = 'client-7d4b9';
  const ids = injectRoles.map((r) => `${podName}.${ns}/${r}`);
  const echoPort = 9000;

  beforeAll(async () => {
    pod = createNetns(1);
    const podIP = pod.addresses[0]!;
    // Another pod's address, on the same subnet: its filter chains must not reach this pod's terminator.
    const otherPodIP = `${podIP.split('.').slice(0, 3).join('.')}.9`;
    await pod.startEcho([{ address: podIP, port: echoPort, name: 'echo-in-pod' }]);
    await apply(admin, [
      service({ name: 'echo', namespace: ns, port: 7000 }),
      endpointSlice({ service: 'echo', namespace: ns, port: echoPort, ips: [podIP] }),
      service({ name: 'elsewhere', namespace: ns, port: 7001 }),
      endpointSlice({ service: 'elsewhere', namespace: ns, port: echoPort, ips: [otherPodIP] }),
    ]);
    shim = await startKubeShim(admin, { namespaces: [ns], xdsHost: pod.hostAddress });

    // The manifest a user writes, injected with both roles; the ConfigMap as `inject --print-configmap` makes it.
    const manifest = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: podName, namespace: ns },
      spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] },
    };
    const options = { roles: [...injectRoles], image: defaultEnvoyImage };
    const injected = injectManifests('pod.yaml', stringify(manifest), options);
    expect(injected.errors).toEqual([]);
    const configMap = bootstrapConfigMap(ns, shim.xdsAddress, stringify) as { data: Record<string, string> };
    const podObject = YAML.parse(injected.output) as { spec: { containers: Parameters<typeof containerProcess>[0][] } };
    await dryRun([podObject as unknown as KubernetesObject, configMap as unknown as KubernetesObject]);

    // The kubelet mounts the ConfigMap's keys as files (readable by the container's user 101).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'inject-pod-'));
    fs.chmodSync(dir, 0o755);
    for (const [key, value] of Object.entries(configMap.data)) {
      fs.writeFileSync(path.join(dir, key), value, { mode: 0o644 });
    }
    const fields = { 'metadata.name': podName, 'metadata.namespace': ns, 'status.podIP': podIP };
    for (const role of injectRoles) {
      const container = podObject.spec.containers.find((c) => c.name === containerName(role))!;
      const { argv, env } = containerProcess(container, fields, { [configMapName]: dir });
      expect(argv[0]).toBe('envoy');
      const log = fs.openSync(path.join(dir, `${role}.log`), 'w');
      // In the pod's network namespace, as the container's non-root user.
      const asUser = ['setpriv', '--reuid=101', '--regid=101', '--clear-groups', '--'];
      const command = [...pod.exec, ...asUser, envoyBinary(), ...argv.slice(1), '-l', 'warning'];
      const environment = { PATH: process.env.PATH, ...env };
      envoys.push(spawn(command[0]!, command.slice(1), { env: environment, stdio: ['ignore', log, log] }));
    }
    await waitFor(
      `both Envoys of ${podName} to ACK everything`,
      async () => {
        const mine = (await debugNodes(shim.adminUrl)).filter((n) => ids.includes(n.id));
        return mine.length === 2 && mine.every((n) => Object.values(n.types).every((t) => t.status === 'SYNCED'));
      },
      30_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${envoyLogs()}`);
    });
  }, 120_000);

  const envoyLogs = () =>
    injectRoles.map((r) => `${r}: ${fs.readFileSync(path.join(dir, `${r}.log`), 'utf8').slice(-1500)}`).join('\n');

  afterAll(async () => {
    for (const child of envoys) child.kill('SIGKILL');
    await shim?.stop();
    pod?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('each Envoy connects as its pod, passes its readiness probe; the terminator holds only its pod IP', async () => {
    const podIP = pod.addresses[0]!;
    const nodes = await debugNodes(shim.adminUrl);
    expect(nodes.map((n) => [n.id, n.role, n.listenAddress])).toEqual([
      [ids[0], 'originate', '127.0.0.1'],
      [ids[1], 'terminate', podIP],
    ]);

    // The readiness probe, as the kubelet sends it: to the pod IP, on each sidecar's port.
    for (const port of [15021, 15022]) {
      const res = await fetch(`http://${podIP}:${port}/ready`, { signal: AbortSignal.timeout(5000) });
      expect(`${port}: ${res.status} ${(await res.text()).trim()}`).toBe(`${port}: 200 LIVE`);
    }

    // A terminator gets a listener per endpoint IP it serves (README: What each Envoy gets): bound to its
    // pod IP, it gets exactly one, on that IP, with one filter chain.
    type Config = { listener: { name: string; resource: { address: unknown; filter_chains: unknown[] } }[] };
    const url = `${shim.adminUrl}/debug/config?node=${encodeURIComponent(ids[1]!)}`;
    const config = (await (await fetch(url)).json()) as Config;
    expect(config.listener.map((l) => [l.name, l.resource.filter_chains.length])).toEqual([
      [`terminate/15008/${podIP}`, 1],
    ]);
    const bound = { socket_address: { address: podIP, port_value: 15008 } };
    expect(config.listener.map((l) => l.resource.address)).toEqual([bound]);
  });

  it('carries bytes: the app dials 127.0.0.1:7000 in the pod, through both sidecars, to the backend', async () => {
    const script =
      "const s=require('net').connect(7000,'127.0.0.1',()=>s.write('hello through the sidecars\\n'));" +
      "let d='';s.on('data',(b)=>{d+=b;if(d.includes('sidecars')){process.stdout.write(d);s.end()}});" +
      'setTimeout(()=>process.exit(3),5000).unref()';
    const inPod = (code: string) =>
      execFileSync(pod.exec[0]!, [...pod.exec.slice(1), process.execPath, '-e', code], {
        encoding: 'utf8',
        timeout: 10_000,
      });
    let out: string;
    try {
      out = inPod(script);
    } catch (err) {
      // What each Envoy saw, from its admin on the pod's loopback.
      const stats = [15000, 15001].map((port) =>
        inPod(`fetch('http://127.0.0.1:${port}/stats?usedonly').then((r)=>r.text()).then((t)=>process.stdout.write(t))`)
          .split('\n')
          .filter((l) => /^(cluster\.(originate|backend)|listener\.|http\.)/.test(l))
          .join('\n'),
      );
      throw new Error(`${(err as Error).message}\n${stats.join('\n---\n')}\n${envoyLogs()}`);
    }
    expect(out).toBe('echo-in-pod\nhello through the sidecars\n');
  });
});
