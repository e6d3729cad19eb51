// Child processes of the benchmark (shim, load generator, peer) and their IPC.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
// `make bench` runs the compiled benchmark (dist/bench, plain node, as `tunnel-shim serve` runs from
// dist/src); run with tsx it forks the TypeScript files through tsx.
const compiled = here.endsWith(path.join('dist', 'bench'));
/** The benchmark's source folder (templates, the peer), wherever this file runs from. */
export const benchDir = compiled ? path.join(here, '..', '..', 'bench') : here;

/** The argv that runs one of the benchmark's scripts in a fresh node (compiled or through tsx), for a command prefix such as `ip netns exec`. */
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
  for (const child of started) child.kill('SIGKILL');
});

export class Child {
  readonly process: ChildProcess;
  private readonly waiting: { cmd: string; match?: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  readonly listeners = new Map<string, (m: any) => void>();

  constructor(file: string, execArgv: string[] = []) {
    const script = path.join(here, compiled ? file.replace(/\.ts$/, '.js') : file);
    this.process = fork(script, [], {
      execArgv: compiled ? execArgv : ['--import', 'tsx', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
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
