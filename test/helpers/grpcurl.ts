// grpcurl against the shim, through scripts/csds.sh (the command the README gives): grpcurl and the
// newer validate.proto its parser needs are installed by scripts/setup.sh from the Go module proxy.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repo } from './cli.js';

export function csdsScript(
  address: string,
  node?: string,
  timeoutMs = 20_000,
): Promise<{ stdout: string; stderr: string; code: number }> {
  if (!fs.existsSync(path.join(repo, '.cache/bin/grpcurl')))
    throw new Error('grpcurl not found in .cache/bin: run scripts/setup.sh (or make setup) first');
  // Asynchronous on purpose: the shim under test may run in this very process.
  return new Promise((resolve) => {
    execFile(
      'bash',
      [path.join(repo, 'scripts/csds.sh'), address, ...(node ? [node] : [])],
      { cwd: repo, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : 1) : 0 }),
    );
  });
}
