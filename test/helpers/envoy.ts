// A real Envoy process for tests: the binary from the project's .venv (scripts/setup.sh), its admin on
// a port it picks itself, bounded waits, and cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBootstrap, type BootstrapOptions } from '../../src/cli/bootstrap.js';
import { waitFor } from './wait.js';

import { repo } from './repo.js';

export function envoyBinary(): string {
  const bin = process.env.ENVOY_BIN ?? path.join(repo, '.venv', 'envoy');
  if (!fs.existsSync(bin))
    throw new Error(`Envoy binary not found at ${bin}: run scripts/setup.sh (or make setup) first`);
  return bin;
}

export interface EnvoyProcess {
  name: string;
  adminUrl: string;
  accessLogPath: string;
  dir: string;
  stats(): Promise<Map<string, number>>;
  stat(name: string): Promise<number>;
  get(pathAndQuery: string): Promise<string>;
  accessLog(): Record<string, unknown>[];
  stop(): Promise<void>;
  process: ChildProcess;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export async function startEnvoy(
  options: Omit<BootstrapOptions, 'adminAddress' | 'accessLog'> & {
    concurrency?: number;
    /** run inside this network namespace (its admin binds adminHost) */ netns?: { exec: string[]; adminHost: string };
  },
): Promise<EnvoyProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `envoy-${options.nodeId.replaceAll('/', '_')}-`));
  const accessLogPath = path.join(dir, 'access.log');
  const adminPathFile = path.join(dir, 'admin-address');
  const bootstrap = buildBootstrap({
    ...options,
    adminAddress: `${options.netns?.adminHost ?? '127.0.0.1'}:0`,
    accessLog: accessLogPath,
  });
  const configPath = path.join(dir, 'bootstrap.json');
  fs.writeFileSync(configPath, JSON.stringify(bootstrap));
  const logFile = fs.openSync(path.join(dir, 'envoy.log'), 'w');
  const prefix = options.netns?.exec ?? [];
  const child = spawn(
    prefix[0] ?? envoyBinary(),
    [
      ...prefix.slice(1),
      ...(prefix.length ? [envoyBinary()] : []),
      '-c',
      configPath,
      '--admin-address-path',
      adminPathFile,
      '--disable-hot-restart',
      '--concurrency',
      String(options.concurrency ?? 1),
      '-l',
      'warning',
      '--drain-time-s',
      '1',
      '--file-flush-interval-msec',
      '100',
    ],
    { stdio: ['ignore', logFile, logFile] },
  );
  running.add(child);
  let exited = false;
  child.on('exit', () => {
    exited = true;
    running.delete(child);
  });
  const adminAddress = await waitFor(`Envoy ${options.nodeId} admin address`, () => {
    if (exited) throw new Error(`Envoy exited: ${fs.readFileSync(path.join(dir, 'envoy.log'), 'utf8').slice(-2000)}`);
    const text = fs.existsSync(adminPathFile) ? fs.readFileSync(adminPathFile, 'utf8').trim() : '';
    return text || undefined;
  });
  const adminUrl = `http://${adminAddress}`;
  return {
    name: options.nodeId,
    adminUrl,
    accessLogPath,
    dir,
    process: child,
    ...envoyAdmin(adminUrl, accessLogPath),
    stop: async () => {
      if (exited) return;
      child.kill('SIGTERM');
      await waitFor(`Envoy ${options.nodeId} to exit`, () => exited, 10_000).catch(() => child.kill('SIGKILL'));
      fs.closeSync(logFile);
    },
  };
}

/**
 * Reads an Envoy: any admin path as text, its counters (used ones) and gauges by name, and its JSON access log.
 */
export function envoyAdmin(adminUrl: string, accessLogPath: string) {
  const get = async (p: string) => {
    const res = await fetch(`${adminUrl}${p}`, { signal: AbortSignal.timeout(5000) });
    return res.text();
  };
  const stats = async () => {
    const out = new Map<string, number>();
    for (const line of (await get('/stats?usedonly&type=Counters'))
      .split('\n')
      .concat((await get('/stats?type=Gauges')).split('\n'))) {
      const i = line.lastIndexOf(': ');
      if (i > 0) out.set(line.slice(0, i), Number(line.slice(i + 2)));
    }
    return out;
  };
  return {
    get,
    stats,
    stat: async (name: string) => (await stats()).get(name) ?? 0,
    accessLog: () =>
      fs.existsSync(accessLogPath)
        ? fs
            .readFileSync(accessLogPath, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>)
        : [],
  };
}
