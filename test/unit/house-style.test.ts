// House style is enforced by tools, in CI as in `make lint`: Prettier formats, ESLint checks correctness, line
// length (120) and which layer may import which (src/README.md, eslint.config.js).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { repo } from '../helpers/repo.js';

const run = promisify(execFile);

async function report(command: string, args: string[]): Promise<string> {
  try {
    await run('npx', [command, ...args], { cwd: repo, maxBuffer: 16 << 20 });
    return '';
  } catch (err) {
    const failed = err as { stdout?: string; stderr?: string };
    return `${failed.stdout ?? ''}${failed.stderr ?? ''}`.trim() || String(err);
  }
}

describe('house style', () => {
  it('Prettier finds every file formatted', async () => {
    expect(await report('prettier', ['--check', '--log-level', 'warn', '.'])).toBe('');
  }, 120_000);

  it('ESLint reports nothing: no long line, no bare any, no import running back up the pipeline', async () => {
    expect(await report('eslint', ['.'])).toBe('');
  }, 120_000);
});
