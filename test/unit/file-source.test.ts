import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import { FileSource } from '../../src/sources/file.js';
import { serviceYaml } from '../helpers/objects.js';

describe('file source', () => {
  it('keeps the last good objects of a file that stops parsing, and names the line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-'));
    const file = path.join(dir, 'a.yaml');
    fs.writeFileSync(file, serviceYaml({ name: 'a', port: 80 }));
    const source = new FileSource(dir);
    expect(source.read().objects).toHaveLength(1);
    fs.writeFileSync(file, 'kind: Service\nmetadata:\n  name: [unclosed\n');
    const state = source.read();
    expect(state.objects).toHaveLength(1);
    expect(state.objects[0]!.object.metadata?.name).toBe('a');
    expect(formatDiagnostic(state.diagnostics[0]!)).toMatch(new RegExp(`^error: ${file}:\\d+: `));
    fs.rmSync(dir, { recursive: true });
  });

  it('reports a document that is not an object', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-'));
    fs.writeFileSync(path.join(dir, 'b.yml'), '- just\n- a list\n');
    const state = new FileSource(dir).read();
    expect(state.diagnostics.map((d) => d.message)).toEqual([
      'each YAML document must be a Kubernetes object (a mapping)',
    ]);
    fs.rmSync(dir, { recursive: true });
  });

  it(
    'refuses a file over the per-file limit and the files past the total limit, by name, keeping their last ' +
      'good objects',
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-'));
      const write = (name: string, pad: number) =>
        fs.writeFileSync(
          path.join(dir, name),
          `${serviceYaml({ name: name.slice(0, 1), port: 80 })}#${'x'.repeat(pad)}\n`,
        );
      write('a.yaml', 0);
      write('b.yaml', 0);
      write('c.yaml', 0);
      const size = fs.statSync(path.join(dir, 'a.yaml')).size;
      const source = new FileSource(dir, undefined, 50, { maxFileBytes: size + 100, maxTotalBytes: 2 * size + 50 });
      const first = source.read();
      expect(first.diagnostics.map(formatDiagnostic)).toEqual([
        `error: ${path.join(dir, 'c.yaml')}: is not read: with it the files come to more than ${2 * size + 50} ` +
          `bytes (serve --max-source-size); files are read in name order`,
      ]);
      expect(first.objects.map((o) => o.object.metadata?.name)).toEqual(['a', 'b']);
      // A refused file does not count towards the total, and keeps its last good objects.
      write('a.yaml', 200);
      const state = source.read();
      expect(state.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([
        `error: ${path.join(dir, 'a.yaml')}: is ${size + 200} bytes, over the limit of ${size + 100} bytes per ` +
          `file (serve --max-file-size); it is not read`,
      ]);
      expect(state.objects.map((o) => o.object.metadata?.name)).toEqual(['a', 'b', 'c']);
      fs.rmSync(dir, { recursive: true });
    },
  );
});
