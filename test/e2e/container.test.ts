// The container image, built and run here: `scripts/image.sh` (what `make image` runs) builds it from
// the Containerfile on a Debian base made here (no image registry is reachable), podman runs the shim
// in it as a non-root user with a read-only root file system and a read-only file source, and two real
// Envoys on the host get their configuration from it: bytes cross the tunnel.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { debugNodes } from '../helpers/nodes.js';
import { repo } from '../helpers/repo.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const script = (name: string) => path.join(repo, 'scripts', name);
const podman = (...args: string[]) => run(script('podman.sh'), args, { cwd: repo, maxBuffer: 16 << 20 });
const image = 'localhost/tunnel-shim:container-test';
const container = `tunnel-shim-test-${process.pid}`;

describe('the container image', () => {
  let dir: string;
  let echo: EchoServer;
  let xdsPort: number;
  let adminPort: number;
  let echoPort: number;
  const envoys: EnvoyProcess[] = [];

  beforeAll(async () => {
    // The base explicitly: `make image` would first try to pull the public one.
    const { stdout: base } = await run(script('container-base.sh'), [], { cwd: repo });
    const t0 = Date.now();
    const env = { ...process.env, BASE: base.trim() };
    await run(script('image.sh'), [image], { cwd: repo, env, maxBuffer: 64 << 20 });
    console.log(`image built in ${((Date.now() - t0) / 1000).toFixed(0)} s on ${base.trim()}`);

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'container-source-'));
    fs.chmodSync(dir, 0o755);
    echo = await startEcho('127.0.0.2', 0, 'backend');
    [xdsPort, adminPort, echoPort] = [await freePort(), await freePort(), await freePort()];
    const tunnelPort = await freePort();
    fs.writeFileSync(
      path.join(dir, 'echo.yaml'),
      serviceYaml({
        name: 'echo',
        namespace: 'box',
        clusterIP: '10.96.0.10',
        port: echoPort,
        annotations: { 'tunnel-shim.io/tunnel-port': String(tunnelPort) },
        endpoints: [{ ip: '127.0.0.2', port: echo.port }],
      }),
      { mode: 0o644 },
    );
    // Host network (the Envoys are on the host's loopback); the file source mounted read-only.
    await podman(
      'run',
      '-d',
      '--rm',
      '--name',
      container,
      '--network',
      'host',
      '--read-only',
      '--cap-drop',
      'ALL',
      '-v',
      `${dir}:/config:ro`,
      image,
      'serve',
      '--source',
      'file:/config',
      '--xds-address',
      `127.0.0.1:${xdsPort}`,
      '--admin-address',
      `127.0.0.1:${adminPort}`,
    );
    await waitFor(
      'the shim in the container to be ready',
      async () => {
        const res = await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined);
        return res?.status === 200;
      },
      30_000,
      200,
    );
  }, 20 * 60_000);

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await podman('rm', '-f', '-t', '0', container).catch(() => undefined);
    await podman('rmi', '-f', image).catch(() => undefined);
    await echo?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is labelled, runs tunnel-shim as a non-root user, and its root file system is read-only', async () => {
    type Config = { User: string; Entrypoint: string[]; Labels: Record<string, string> };
    const [info] = JSON.parse((await podman('image', 'inspect', image)).stdout) as { Config: Config }[];
    expect(info!.Config.User).toBe('65532:65532');
    expect(info!.Config.Entrypoint).toEqual(['node', '/app/bin/tunnel-shim.js']);
    expect(info!.Config.Labels).toMatchObject({
      'org.opencontainers.image.title': 'tunnel-shim',
      'org.opencontainers.image.version': '0.1.0',
      'org.opencontainers.image.licenses': 'Apache-2.0',
    });
    // Who runs it, whether it can write, and that no development dependency made it into the image.
    const check =
      'id -u; touch /app/x 2>&1 || true; ' + 'ls /app/node_modules | grep -c -x -e typescript -e vitest -e tsx || true';
    const { stdout } = await podman('exec', container, 'sh', '-c', check);
    expect(stdout.trim().split('\n')).toEqual(['65532', "touch: cannot touch '/app/x': Read-only file system", '0']);
  });

  it('is the image deploy/shim.yaml runs and `make image` builds', () => {
    const deployed = YAML.parseAllDocuments(fs.readFileSync(path.join(repo, 'deploy/shim.yaml'), 'utf8'))[0]!.toJS();
    const built = /^IMAGE \?= (.+)$/m.exec(fs.readFileSync(path.join(repo, 'Makefile'), 'utf8'))?.[1];
    expect(deployed.spec.template.spec.containers[0].image).toBe(built);
  });

  it('serves two real Envoys on the host: bytes cross the tunnel', async () => {
    const xdsAddress = `127.0.0.1:${xdsPort}`;
    envoys.push(
      ...(await Promise.all([
        startEnvoy({ role: 'terminate', nodeId: 'box-terminator', xdsAddress }),
        startEnvoy({ role: 'originate', nodeId: 'box-originator', xdsAddress, listenAddress: '127.0.0.1' }),
      ])),
    );
    const through = () => roundTrip(echoPort, 'through the image\n').catch(() => false);
    const received = await waitFor('bytes through the tunnel', through, 30_000, 200);
    expect(received).toBe('backend\nthrough the image\n');
    const nodes = await debugNodes(`http://127.0.0.1:${adminPort}`);
    expect(nodes.map((n) => n.id).sort()).toEqual(['box-originator', 'box-terminator']);
    // The /ui page's static files ship in the image (tsc does not copy them into dist/).
    const page = await fetch(`http://127.0.0.1:${adminPort}/ui/`);
    expect(page.status).toBe(200);
  });
});
