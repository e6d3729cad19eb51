// Runs the tunnel-shim command line from its TypeScript sources, as a separate process, bounded in time.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

export { repo } from './repo.js';
import { repo } from './repo.js';

/** Arguments for `node` that run the CLI from src/ (no build step needed). */
export function cliArgs(args: string[]): string[] {
  return ['--import', 'tsx', path.join(repo, 'src/cli/dev.ts'), ...args];
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(args), { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tunnel-shim ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running CLI command (serve); the caller stops it. */
export function spawnCli(args: string[]): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, cliArgs(args), { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return Object.assign(child, { output: () => output });
}

/** `serve` on a file source with loopback xDS and admin ports: the arguments every serve test starts with. */
export function serveArgs(dir: string, xdsPort: number, adminPort: number): string[] {
  return [
    'serve',
    '--source',
    `file:${dir}`,
    '--xds-address',
    `127.0.0.1:${xdsPort}`,
    '--admin-address',
    `127.0.0.1:${adminPort}`,
  ];
}
