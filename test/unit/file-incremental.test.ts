// The file source parses only what changed: a file is cut into runs at its `---` markers and only runs
// it does not hold are parsed. What it serves must be exactly what parsing the whole file gives: the
// same objects, the same line of every field, the same diagnostics (naming the same lines), and the
// same last good objects when the file stops parsing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import { isModelObject, type FieldPath, type SourcedObject } from '../../src/model/objects.js';
import { FileSource } from '../../src/sources/file.js';
import { parseYamlPortable, withLines } from '../../src/sources/yaml.js';
import type { SourceState } from '../../src/sources/source.js';

const dirs: string[] = [];
const sources: FileSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-incr-'));
  dirs.push(dir);
  return dir;
}

function source(target: string): FileSource {
  const s = new FileSource(target);
  sources.push(s);
  return s;
}

/** A Service, in a few shapes: block scalars (holding `---`-like lines), flow, quoted, anchors, comments. */
function serviceDoc(name: string, shape: number, port = 80): string[] {
  const head = ['apiVersion: v1', 'kind: Service', 'metadata:', `  name: ${name}`, '  namespace: default'];
  const spec = ['spec:', '  clusterIP: 10.96.0.1', '  ports:', `  - name: tcp`, `    port: ${port}`];
  switch (shape % 5) {
    case 0:
      return [...head, '  annotations:', "    tunnel-shim.io/tunnel: 'h2'", ...spec];
    case 1:
      return [...head, '  annotations:', '    note: |', '      first', '      ---', '      last', ...spec];
    case 2:
      return [...head, '  labels: {app: x, tier: "a b", on: yes}', '# a comment', ...spec];
    case 3:
      return [...head, '  annotations:', '    note: >-', '      folded', '      ...', '      text', ...spec];
    default:
      return [...head, '  labels: &l', '    app: y', '  annotations: *l', ...spec];
  }
}

function sliceDoc(name: string, ip: string): string[] {
  return [
    'apiVersion: discovery.k8s.io/v1',
    'kind: EndpointSlice',
    'metadata:',
    `  name: ${name}-0`,
    '  namespace: default',
    '  labels:',
    `    kubernetes.io/service-name: ${name}`,
    'addressType: IPv4',
    'ports:',
    '- {name: tcp, port: 8080}',
    'endpoints:',
    `- addresses: ["${ip}"]`,
    '  conditions:',
    '    ready: true',
  ];
}

/** Lines an edit puts inside a document: markers, near-markers, directives, broken and odd YAML. */
const trickyLines = [
  '---',
  '--- # a comment',
  '---x',
  '...',
  '      ---',
  '  ---',
  '# ---',
  '---\t',
  '%YAML 1.1',
  '  name: [unclosed',
  'kind: Service',
  '- a list item',
  'extra: |',
  '  block',
  '--- |',
  '"quoted',
  "  'x: y'",
  '\uFEFF---',
  'a: b\rc: d',
  'dup: 1',
  'dup: 2',
  '',
];

type Doc = string[];
interface Version {
  docs: Doc[];
  /** The separator before each document but the first. */
  separator: string;
  crlf: boolean;
}

const nameArb = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);
const docArb: fc.Arbitrary<Doc> = fc.oneof(
  fc.tuple(nameArb, fc.nat(9), fc.integer({ min: 1, max: 65535 })).map(([n, s, p]) => serviceDoc(n, s, p)),
  fc.tuple(nameArb, fc.ipV4()).map(([n, ip]) => sliceDoc(n, ip)),
  fc.constantFrom<Doc>(['apiVersion: v1', 'kind: ConfigMap', 'data: {a: "1"}'], ['# only a comment'], []),
);

type Edit = (v: Version) => Version;
const at = (docs: Doc[], i: number) => (docs.length === 0 ? 0 : i % docs.length);
const withDocs = (v: Version, docs: Doc[]): Version => ({ ...v, docs });
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.tuple(fc.nat(), docArb).map(([i, d]) => (v: Version) => {
    const docs = [...v.docs];
    docs.splice(v.docs.length === 0 ? 0 : i % (v.docs.length + 1), 0, d);
    return withDocs(v, docs);
  }),
  fc.nat().map(
    (i) => (v: Version) =>
      withDocs(
        v,
        v.docs.filter((_, k) => k !== at(v.docs, i)),
      ),
  ),
  fc.tuple(fc.nat(), docArb).map(
    ([i, d]) =>
      (v: Version) =>
        withDocs(
          v,
          v.docs.map((x, k) => (k === at(v.docs, i) ? d : x)),
        ),
  ),
  fc.tuple(fc.nat(), fc.nat()).map(([i, j]) => (v: Version) => {
    const docs = [...v.docs];
    const [moved] = docs.splice(at(docs, i), 1);
    if (moved) docs.splice(at(docs, j), 0, moved);
    return withDocs(v, docs);
  }),
  fc.tuple(fc.nat(), fc.nat(), fc.constantFrom(...trickyLines)).map(([i, l, line]) => (v: Version) => {
    const docs = v.docs.map((d, k) =>
      k === at(v.docs, i) ? [...d.slice(0, l % (d.length + 1)), line, ...d.slice(l % (d.length + 1))] : d,
    );
    return withDocs(v, docs);
  }),
  fc.tuple(fc.nat(), fc.nat()).map(([i, l]) => (v: Version) => {
    const docs = v.docs.map((d, k) => (k === at(v.docs, i) ? d.filter((_, n) => n !== l % Math.max(1, d.length)) : d));
    return withDocs(v, docs);
  }),
  fc
    .constantFrom('---', '--- ', '---  # next', '---\t', '...\n---', '...\n%YAML 1.1\n---')
    .map((separator) => (v: Version) => ({ ...v, separator })),
  fc.constant((v: Version) => ({ ...v, crlf: !v.crlf })),
);

function render({ docs, separator, crlf }: Version): string {
  const text = docs.map((d) => d.map((l) => `${l}\n`).join('')).join(`${separator}\n`);
  return crlf ? text.replace(/\n/g, '\r\n') : text;
}

/** The objects and the diagnostics of a state, as text: file:line for every field that has a line. */
function describeObject(o: SourcedObject, paths: FieldPath[]) {
  return {
    object: o.object,
    line: o.origin?.line,
    lines: paths.map((p) => `${p.join('.')}@${o.origin?.lineOf?.(p)}`),
  };
}

function describeState(state: SourceState, paths: FieldPath[][]) {
  return {
    objects: state.objects.map((o, i) => describeObject(o, paths[i] ?? [])),
    diagnostics: state.diagnostics.map((d) => `${formatDiagnostic(d)} [${d.reason}]`),
  };
}

/** What the file source gave before it parsed incrementally: the whole file, and its last good objects. */
class WholeFileReference {
  private lastGood?: SourcedObject[];
  /** Every field path of every served object (and one that does not exist): the lines to compare. */
  paths: FieldPath[][] = [];
  private lastGoodPaths: FieldPath[][] = [];

  read(file: string, text: string): SourceState {
    const portable = parseYamlPortable(file, text, isModelObject);
    const parsed = withLines(file, portable);
    const paths = portable.objects.map((o) => [
      ...[...o.lines.keys()].map((k) => (k === '' ? [] : k.split('\u0000'))),
      ['spec', 'no-such-field'],
    ]);
    const diagnostics = [...parsed.diagnostics];
    if (!parsed.broken) {
      [this.lastGood, this.lastGoodPaths] = [parsed.objects, paths];
      this.paths = paths;
      return { objects: parsed.objects, diagnostics };
    }
    if (this.lastGood) {
      const kept = { severity: 'warning' as const, reason: 'KeptLastGood' };
      diagnostics.push({
        ...diagnostics[0]!,
        ...kept,
        message: 'serving the objects of the last good version of this file',
      });
    }
    this.paths = this.lastGoodPaths;
    return { objects: this.lastGood ?? [], diagnostics };
  }
}

describe('incremental parsing of a file', () => {
  it('gives exactly what parsing the whole file gives, for random edits (seed 20261129)', () => {
    const dir = tempDir();
    const file = path.join(dir, 'services.yaml');
    const start = fc.record({
      docs: fc.array(docArb, { maxLength: 8 }),
      separator: fc.constant<string>('---'),
      crlf: fc.boolean(),
    });
    let [checkedVersions, documents] = [0, 0];
    fc.assert(
      fc.property(start, fc.array(editArb, { minLength: 1, maxLength: 8 }), (first, edits) => {
        fs.rmSync(file, { force: true });
        const incremental = source(dir);
        const reference = new WholeFileReference();
        let version = first;
        for (const edit of [(v: Version) => v, ...edits]) {
          version = edit(version);
          const text = render(version);
          fs.writeFileSync(file, text);
          const expected = reference.read(file, text);
          const got = incremental.read();
          expect(describeState(got, reference.paths)).toEqual(describeState(expected, reference.paths));
          checkedVersions++;
          documents += parseYamlPortable(file, text).documents;
        }
      }),
      { seed: 20261129, numRuns: 150 },
    );
    // Most versions here have a problem or a directive, so parse whole: the cost is proven below.
    console.log(`incremental = whole-file parse for ${checkedVersions} versions (${documents} documents)`);
  });
});

/** `count` Services, each with its EndpointSlice: 2 x `count` documents. */
function servicesFile(count: number, name = (i: number) => `svc-${i}`): string {
  const docs: Doc[] = [];
  for (let i = 0; i < count; i++)
    docs.push(serviceDoc(name(i), i, 1000 + i), sliceDoc(name(i), `10.1.${i >> 8}.${i & 255}`));
  return render({ docs, separator: '---', crlf: false });
}

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
