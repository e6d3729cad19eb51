// The README's examples, run as written: the demo's one-liner and its clean exit, the bootstrap
// commands and two Envoys from them on one host, the `status` and `csds.sh` examples against a
// demo-like shim with real Envoys (output compared by shape), the EnvoyFilter import and its check,
// the Kubernetes tunnel recipe, `--version`, and envoy-configs/. None of them can go stale silently.
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repo, runCli } from '../helpers/cli.js';
import { envoyBinary, startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { freePort } from '../helpers/net.js';
import { codeBlocks, commands, consoleExamples, section, shape, words } from '../helpers/readme.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

const execFileP = promisify(execFile);
const cli = 'node bin/tunnel-shim.js ';
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'readme-'));

/** Runs `node bin/tunnel-shim.js ...` (from the sources) and any `> FILE` redirect in `dir`. */
async function runCliLine(line: string, dir?: string) {
  const [command, redirect] = line.split(' > ');
  expect(command!.startsWith(cli), `${line} runs the CLI`).toBe(true);
  const result = await runCli(
    words(command!.slice(cli.length)).map((w) =>
      dir && w.startsWith('file:') && !w.includes('/') ? `file:${path.join(dir, w.slice(5))}` : w,
    ),
  );
  if (redirect) fs.writeFileSync(path.join(dir!, redirect.trim()), result.stdout);
  return result;
}

describe('Quick start: make demo', () => {
  it('answers the README one-liner while up, and leaves no envoy-demo-* folder after Ctrl-C', async () => {
    const line = commands(codeBlocks(section('Quick start'), 'sh')[1]!)[0]!;
    expect(line).toMatch(/^node -e /);
    for (const port of [18000, 18080, 7000, 15008])
      expect(await isFree(port), `make demo's fixed port ${port} is free`).toBe(true);
    const dir = tmp();
    const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: repo,
      env: { ...process.env, TMPDIR: dir },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.on('data', (d) => (out += d));
    demo.stderr.on('data', (d) => (out += d));
    try {
      await waitFor(
        'the demo to be up',
        () => {
          if (demo.exitCode !== null) throw new Error(`demo exited: ${out}`);
          return out.includes('Ctrl-C to stop');
        },
        90_000,
        200,
      );
      expect(out).toContain(line);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('envoy-demo-'))).toHaveLength(2);
      const { stdout } = await execFileP('bash', ['-c', line], { cwd: repo, timeout: 10_000 });
      expect(stdout).toBe('hi\n');
      process.kill(-demo.pid!, 'SIGINT'); // Ctrl-C: the whole process group, as a terminal sends it
      await waitFor('the demo to exit', () => demo.exitCode !== null || demo.signalCode !== null, 15_000);
      expect(demo.exitCode).toBe(0);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('envoy-'))).toEqual([]); // (tsx keeps a cache there)
    } finally {
      if (demo.exitCode === null) process.kill(-demo.pid!, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('What each Envoy gets: bootstrap', () => {
  it('writes the three bootstraps as shown, and two Envoys from them run side by side as shown', async () => {
    const [bootstraps, run] = codeBlocks(section('What each Envoy gets'), 'sh').map(commands);
    const dir = tmp();
    try {
      for (const line of bootstraps!) expect((await runCliLine(line, dir)).code).toBe(0);
      const admin = (file: string) =>
        (
          YAML.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as {
            admin: { address: { socket_address: { port_value: number } } };
          }
        ).admin.address.socket_address.port_value;
      expect(['originate.yaml', 'terminate.yaml', 'relay.yaml'].map(admin)).toEqual([9901, 9902, 9903]);
      // Run them as the README says, with their admin and xDS moved to free ports (nothing answers there).
      const xds = `127.0.0.1:${await freePort()}`;
      for (const line of bootstraps!.slice(0, 2))
        await runCliLine(line.replace(' >', ` --admin-address 127.0.0.1:0 --xds-address ${xds} >`), dir);
      expect(run).toHaveLength(2);
      const envoys = run!.map((line, i) => {
        const [bin, ...args] = words(line);
        expect(bin).toBe('.venv/envoy');
        const adminPath = path.join(dir, `admin-${i}`);
        const child = spawn(envoyBinary(), [...args, '--admin-address-path', adminPath, '-l', 'warning'], {
          cwd: dir,
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let log = '';
        child.stderr.on('data', (d) => (log += d));
        return { child, adminPath, log: () => log };
      });
      try {
        for (const e of envoys) {
          await waitFor(
            'both Envoys up',
            () => {
              if (e.child.exitCode !== null) throw new Error(`Envoy exited: ${e.log()}`);
              return fs.existsSync(e.adminPath) && fs.readFileSync(e.adminPath, 'utf8').trim() !== '';
            },
            20_000,
            100,
          );
        }
        for (const e of envoys) expect(e.child.exitCode).toBeNull();
      } finally {
        for (const e of envoys) e.child.kill('SIGKILL');
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it(
    "envoy-configs/ holds exactly what the command in each file's first line writes, and git " + 'tracks them',
    async () => {
      for (const file of ['originate.yaml', 'terminate.yaml']) {
        const text = fs.readFileSync(path.join(repo, 'envoy-configs', file), 'utf8');
        const [first, ...rest] = text.split('\n');
        expect(first).toMatch(/^# Written by: node bin\/tunnel-shim\.js bootstrap /);
        expect(rest.join('\n')).toBe((await runCliLine(first!.slice('# Written by: '.length))).stdout);
        expect(rest.join('\n')).toContain('.venv/envoy');
      }
      expect(execFileSync('git', ['ls-files', '-ci', '--exclude-standard'], { cwd: repo, encoding: 'utf8' })).toBe('');
    },
  );

  it('prints the version with --version', async () => {
    const { version } = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
    expect(section('Quick start')).toContain('`node bin/tunnel-shim.js --version` prints the version');
    expect((await runCli(['--version'])).stdout).toBe(`${version}\n`);
  });
});

describe('Debug a proxy: against a demo-like shim with real Envoys', () => {
  let shim: TestShim;
  let envoys: EnvoyProcess[] = [];
  let tunnelPort: number;
  let appPort: number;
  // The demo's own file, on free ports; outputs are mapped back to the demo's ports before comparing.
  const demoPorts = (text: string) =>
    text.replaceAll(String(tunnelPort), '15008').replaceAll(`:${appPort}`, ':7000').replaceAll(`/${appPort}`, '/7000');
  const withShim = (line: string) =>
    line
      .replaceAll('127.0.0.1:18080', shim.adminUrl.slice('http://'.length))
      .replaceAll('127.0.0.1:18000', shim.xdsAddress);

  beforeAll(async () => {
    tunnelPort = await freePort();
    appPort = await freePort();
    const services = fs
      .readFileSync(path.join(repo, 'envoy-configs/demo/services.yaml'), 'utf8')
      .replace('"15008"', `"${tunnelPort}"`)
      .replace('port: 7000', `port: ${appPort}`);
    shim = await startShim({ 'services.yaml': services });
    envoys = await Promise.all([
      startEnvoy({
        role: 'originate',
        nodeId: 'demo-originator',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
        concurrency: 2,
      }),
      startEnvoy({ role: 'terminate', nodeId: 'demo-terminator', xdsAddress: shim.xdsAddress }),
    ]);
    await waitFor(
      'both demo Envoys SYNCED',
      async () => {
        const { stdout } = await runCli(['status', '--admin-address', shim.adminUrl.slice('http://'.length)]);
        return stdout.split('\n').filter((l) => l.startsWith('demo-') && !/STALE|NOT_SENT|NACKED/.test(l)).length === 2;
      },
      30_000,
      200,
    );
  });

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await shim?.stop();
  });

  it('prints what the status examples show (hashes and table padding aside)', async () => {
    const examples = codeBlocks(section('Debug a proxy'), 'console').flatMap(consoleExamples);
    expect(examples.map((e) => e.command)).toEqual([
      'node bin/tunnel-shim.js status --admin-address 127.0.0.1:18080',
      'node bin/tunnel-shim.js status demo-terminator',
      'node bin/tunnel-shim.js status demo-originator --output yaml',
    ]);
    for (const { command, output } of examples) {
      const line = command.includes('--admin-address')
        ? withShim(command)
        : `${command} --admin-address ${shim.adminUrl.slice('http://'.length)}`;
      const result = await runCliLine(line);
      expect(result.code, result.stderr).toBe(0);
      if (output.trim()) expect(shape(demoPorts(result.stdout))).toBe(shape(output));
      else expect(YAML.parse(result.stdout)).toHaveProperty('listeners');
    }
  });

  it('runs the CSDS and log-level examples', async () => {
    const blocks = codeBlocks(section('Debug a proxy'), 'sh').map(commands).flat();
    const csds = blocks.filter((l) => l.startsWith('scripts/csds.sh'));
    expect(csds).toHaveLength(2);
    for (const line of csds) {
      const { stdout } = await execFileP('bash', ['-c', withShim(line)], {
        cwd: repo,
        timeout: 20_000,
        maxBuffer: 16 << 20,
      });
      expect(stdout).toContain('"demo-originator"');
    }
    const curls = blocks.filter((l) => l.startsWith('curl '));
    expect(curls).toHaveLength(2);
    for (const line of curls)
      expect(
        JSON.parse((await execFileP('bash', ['-c', `${withShim(line)} -sf`], { timeout: 10_000 })).stdout),
      ).toHaveProperty('previous');
    await fetch(`${shim.adminUrl}/debug/log-level?level=silent`, { method: 'PUT' }); // the test shim's own level
  });
});

describe('Migrate from EnvoyFilter', () => {
  it('prints exactly the README output, and the suggested check renders a listener', async () => {
    const text = section('Migrate from EnvoyFilter');
    const [example, check] = codeBlocks(text, 'sh').map(commands);
    const result = await runCliLine(example![0]!);
    expect(result.stdout).toBe(codeBlocks(text, 'yaml')[0]);
    const dir = tmp();
    try {
      expect((await runCliLine(check![0]!, dir)).code).toBe(0);
      const rendered = await runCliLine(check![1]!, dir);
      expect(rendered.code, rendered.stderr).toBe(0);
      expect((YAML.parse(rendered.stdout) as { listeners: { name: string }[] }).listeners.map((l) => l.name)).toEqual([
        'originate/payments/db/5432',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Run it in Kubernetes: the local tunnel recipe (real kube-apiserver, network namespace, root)', () => {
  it('sends bytes through a Kubernetes-sourced tunnel with the README command', async () => {
    const text = section('Run it in Kubernetes');
    const line = codeBlocks(text, 'sh')
      .map(commands)
      .flat()
      .find((l) => l.startsWith('npm run dev:k8s-tunnel'));
    expect(line).toBe('npm run dev:k8s-tunnel');
    const promised = /`bytes echoed back through the tunnel +(\d+)`/.exec(text)?.[0].slice(1, -1);
    const { stdout } = await execFileP('bash', ['-c', `${line} -- --once`], {
      cwd: repo,
      timeout: 240_000,
      maxBuffer: 16 << 20,
    });
    expect(stdout).toContain(promised);
    expect(stdout).toContain('first answer: "echo-pod\\nhello #1');
  }, 300_000);
});

async function isFree(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const server = net.createServer().once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
