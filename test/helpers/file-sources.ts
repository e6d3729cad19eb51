// File sources and temporary folders for a test file, stopped and removed after each test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { FileSource } from '../../src/sources/file.js';

export function fileSourceFixture(prefix: string) {
  const dirs: string[] = [];
  const sources: FileSource[] = [];
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.stop()));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    tempDir(): string {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
      dirs.push(dir);
      return dir;
    },
    source(target: string): FileSource {
      const s = new FileSource(target);
      sources.push(s);
      return s;
    },
  };
}
