// The repository's root, found from this file whether it runs as TypeScript (test/helpers) or compiled
// (dist/test/helpers, as the benchmark runs it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'scripts', 'setup.sh'))) return dir;
  }
  throw new Error('repository root (scripts/setup.sh) not found above the test helpers');
}

export const repo = findRoot();
