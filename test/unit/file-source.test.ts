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
    expect(state.diagnostics.map((d) => d.message)).toEqual(['each YAML document must be a Kubernetes object (a mapping)']);
    fs.rmSync(dir, { recursive: true });
  });
});
