// Child processes of the benchmark (shim, load generator, peer) and their IPC.
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// `make bench` runs the compiled benchmark (dist/bench, plain node, as `tunnel-shim serve` runs from
// dist/src); run with tsx it forks the TypeScript files through tsx.
const compiled = here.endsWith(path.join('dist', 'bench'));
/** The benchmark's source folder (templates, the peer), wherever this file runs from. */
export const benchDir = compiled ? path.join(here, '..', '..', 'bench') : here;

/** The argv that runs one of the benchmark's scripts in a fresh node (compiled or through tsx), for a command ' +
  'prefix such as `ip netns exec`. */
export function nodeScript(file: string): string[] {
  return [
    process.execPath,
    ...(compiled ? [] : ['--import', 'tsx']),
    path.join(here, compiled ? file.replace(/\.ts$/, '.js') : file),
  ];
}

/** Every process the benchmark started: killed when it exits, also after a failure. */
export const started = new Set<ChildProcess>();
process.on('exit', () => {
  // SIGTERM: the API server's driver (k8s-api.ts) stops etcd and kube-apiserver on it; the others just end.
  for (const child of started) child.kill('SIGTERM');
});

/**
 * Where the benchmark's processes run. `pinned` (machines with >= 2 cores): the server under test (shim
 * or peer) on core 0, the load generator and this process on core 1, so the server's figures are its
 * own; `shared`: every process on every core, as they would be without taskset.
 */
export type Cores = 'pinned' | 'shared';
export type Part = 'server' | 'generator';
let cores: Cores = 'shared';
export const canPin = os.cpus().length >= 2 && fs.existsSync('/usr/bin/taskset');

/** Sets where processes started from now on run, and moves this process (the driver) accordingly. */
export function useCores(mode: Cores): void {
  cores = mode;
  if (!canPin) return;
  const all = `0-${os.cpus().length - 1}`;
  execFileSync('taskset', ['-a', '-p', '-c', mode === 'pinned' ? '1' : all, String(process.pid)], { stdio: 'ignore' });
}

/** The command prefix that runs a process of `part` on its core(s): empty when cores are shared. */
export function pinPrefix(part: Part): string[] {
  return cores === 'pinned' ? ['taskset', '-c', part === 'server' ? '0' : '1'] : [];
}

/** Kills every process the benchmark started (after a failed step) and waits until they are gone. */
export async function killAll(): Promise<void> {
  const waits = [...started].map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.once('exit', r))));
  // SIGTERM first: the API server's driver (k8s-api.ts) stops etcd and kube-apiserver on it.
  for (const c of started) c.kill('SIGTERM');
  await Promise.race([Promise.all(waits), sleep(10_000)]);
  for (const c of started) c.kill('SIGKILL');
}

export interface ChildOptions {
  execArgv?: string[];
  part?: Part;
  env?: NodeJS.ProcessEnv;
  /** Run the TypeScript file through tsx even from dist/ (scripts that import the test harness). */
  tsx?: boolean;
}

export class Child {
  readonly process: ChildProcess;
  private readonly waiting: { cmd: string; match?: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  readonly listeners = new Map<string, (m: any) => void>();

  constructor(file: string, options: ChildOptions = {}) {
    const { execArgv = [], part = 'generator', env, tsx = !compiled } = options;
    const script = tsx ? path.join(benchDir, file) : path.join(here, file.replace(/\.ts$/, '.js'));
    const prefix = pinPrefix(part);
    // fork() runs `execPath ...execArgv script`: taskset as execPath execs node on its core, IPC intact.
    const nodeArgv = tsx ? ['--import', 'tsx', ...execArgv] : execArgv;
    this.process = fork(script, [], {
      execPath: prefix.length ? '/usr/bin/taskset' : process.execPath,
      execArgv: prefix.length ? [...prefix.slice(1), process.execPath, ...nodeArgv] : nodeArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: env ?? process.env,
    });
    started.add(this.process);
    this.process.once('exit', () => started.delete(this.process));
    this.process.on('message', (m: any) => {
      const i = this.waiting.findIndex((w) => w.cmd === m.cmd && (!w.match || w.match(m)));
      if (i >= 0) this.waiting.splice(i, 1)[0]!.resolve(m);
      else this.listeners.get(m.cmd)?.(m);
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  send(m: object): void {
    this.process.send(m);
  }

  next(cmd: string, timeoutMs = 120_000, match?: (m: any) => boolean): Promise<any> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd} did not come within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push({ cmd, match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  async ask(m: object, reply: string, timeoutMs?: number): Promise<any> {
    const p = this.next(reply, timeoutMs);
    this.send(m);
    return p;
  }

  kill(): void {
    this.process.kill('SIGKILL');
  }
}

export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
