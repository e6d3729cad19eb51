// The golden translation cases: test/golden/CASE/in.yaml (objects in) and test/golden/CASE/out/ (what
// each view is served), read by the golden, isolation and annotation coverage tests.
import fs from 'node:fs';
import path from 'node:path';
import { repo } from './repo.js';

export const goldenDir = path.join(repo, 'test', 'golden');

/** Case names, sorted: the folders with an in.yaml. */
export function goldenCases(): string[] {
  return fs
    .readdirSync(goldenDir)
    .filter((name) => fs.existsSync(path.join(goldenDir, name, 'in.yaml')))
    .sort();
}

export function readCase(name: string): string {
  return fs.readFileSync(path.join(goldenDir, name, 'in.yaml'), 'utf8');
}
