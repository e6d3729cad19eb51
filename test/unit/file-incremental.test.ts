// The file source parses only what changed: a file is cut into runs at its `---` markers and only runs
// it does not hold are parsed. What it serves must be exactly what parsing the whole file gives: the
// same objects, the same line of every field, the same diagnostics (naming the same lines), and the
// same last good objects when the file stops parsing.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import { isModelObject, type FieldPath, type SourcedObject } from '../../src/model/objects.js';
import { parseYamlPortable, withLines } from '../../src/sources/yaml.js';
import type { SourceState } from '../../src/sources/source.js';
import { joinDocs, serviceDoc, sliceDoc, type Doc } from '../helpers/yaml-docs.js';
import { fileSourceFixture } from '../helpers/file-sources.js';

const { tempDir, source } = fileSourceFixture('fs-incr-');

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

const render = ({ docs, separator, crlf }: Version) => joinDocs(docs, separator, crlf);

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
      { seed: 20261129, numRuns: 100 },
    );
    // Most versions here have a problem or a directive, so parse whole: the cost is proven below.
    console.log(`incremental = whole-file parse for ${checkedVersions} versions (${documents} documents)`);
  }, 180_000);
});
