// The cost of a change to the file source is the change: a one-document change to a 2,000-document file
// parses one document (in this thread and in the parse worker), unchanged documents keep their objects
// (the model's memos find them by identity) and name exact lines, and a change to one file of a folder
// of 1,000 reads and parses only that file.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import { isModelObject } from '../../src/model/objects.js';
import type { SourceState } from '../../src/sources/source.js';
import { parseYamlPortable, withLines } from '../../src/sources/yaml.js';
import { serviceDoc, servicesFile } from '../helpers/yaml-docs.js';
import { fileSourceFixture } from '../helpers/file-sources.js';

const { tempDir, source } = fileSourceFixture('fs-incr-');

const served = (state: SourceState, name: string) =>
  state.objects.find((o) => o.object.kind === 'Service' && o.object.metadata?.name === name)!;

describe('the cost of a change is the change', () => {
  for (const thread of ['in this thread', 'in the parse worker'] as const) {
    it(`a one-document change to a 2,000-document file parses one document (${thread})`, async () => {
      const dir = tempDir();
      const file = path.join(dir, 'services.yaml');
      const text = servicesFile(1000);
      fs.writeFileSync(file, text);
      const src = source(file);
      const read = () => (thread === 'in this thread' ? src.read() : src.readAsync());
      const first = await read();
      expect(first.objects).toHaveLength(2000);
      expect(src.counts.documentsParsed).toBe(2000);

      // One Service's port changes: that document is parsed, every other object is the very same.
      fs.writeFileSync(file, text.replace('port: 1500\n', 'port: 2500\n'));
      const changed = await read();
      expect(src.counts.documentsParsed).toBe(2001);
      expect(changed.objects.filter((o, i) => o !== first.objects[i]).map((o) => o.object.metadata?.name)).toEqual([
        'svc-500',
      ]);

      // A Service inserted near the top: one more document parsed; the ones below keep their objects,
      // and every line they name is the whole-file parse's.
      const newService = `---\n${serviceDoc('new', 0, 9).join('\n')}\n`;
      const inserted = fs.readFileSync(file, 'utf8').replace('---\n', `${newService}---\n`);
      fs.writeFileSync(file, inserted);
      const shifted = await read();
      expect(src.counts.documentsParsed).toBe(2002);
      const whole = withLines(file, parseYamlPortable(file, inserted, isModelObject));
      const port = ['spec', 'ports', 0, 'port'];
      for (const name of ['new', 'svc-0', 'svc-500', 'svc-999']) {
        const [got, want] = [served(shifted, name), served(whole, name)];
        expect([got.origin?.line, got.origin?.lineOf?.(port)]).toEqual([
          want.origin?.line,
          want.origin?.lineOf?.(port),
        ]);
      }
      expect(served(shifted, 'svc-999').object).toBe(served(changed, 'svc-999').object);
      expect(served(shifted, 'svc-999')).not.toBe(served(changed, 'svc-999'));

      // A broken document names its line as the whole-file parse does; the file keeps its last good objects.
      const broken = inserted.replace('  name: svc-700\n', '  name: [svc-700\n');
      fs.writeFileSync(file, broken);
      const state = await read();
      const expected = parseYamlPortable(file, broken, isModelObject).diagnostics.map(formatDiagnostic);
      const line = /:(\d+):/.exec(expected[0]!)![1];
      expect(state.diagnostics.map(formatDiagnostic)).toEqual([
        ...expected,
        `warning: ${file}:${line}: serving the objects of the last good version of this file`,
      ]);
      expect(state.objects).toEqual(shifted.objects);
    }, 180_000);
  }

  it('a change to one file of a folder of 1,000 parses only that file, and reads no other', async () => {
    const dir = tempDir();
    const name = (i: number) => path.join(dir, `svc-${String(i).padStart(4, '0')}.yaml`);
    for (let i = 0; i < 1000; i++)
      fs.writeFileSync(
        name(i),
        servicesFile(1, () => `svc-${i}`),
      );
    const written = Date.now();
    const src = source(dir);
    const first = src.read();
    expect(first.objects).toHaveLength(2000);
    expect(src.counts).toEqual({ filesRead: 1000, filesParsed: 1000, documentsParsed: 2000 });
    // A stamp is trusted once the file is older than the timestamps' resolution (2 s): until then an
    // unchanged file is read again (and not parsed), after that it is not even read.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, written + 2100 - Date.now())));
    expect(src.read().objects).toEqual(first.objects);
    expect(src.counts).toMatchObject({ filesParsed: 1000, documentsParsed: 2000 });
    const { filesRead } = src.counts;
    expect(src.read().objects).toEqual(first.objects);
    expect(src.counts).toEqual({ filesRead, filesParsed: 1000, documentsParsed: 2000 });

    fs.writeFileSync(name(500), servicesFile(1, () => 'svc-500').replace('port: 1000\n', 'port: 2000\n'));
    const changed = src.read();
    expect(src.counts).toEqual({ filesRead: filesRead + 1, filesParsed: 1001, documentsParsed: 2001 });
    expect(changed.objects.filter((o, i) => o !== first.objects[i]).map((o) => o.object.metadata?.name)).toEqual([
      'svc-500',
    ]);
  });
});
