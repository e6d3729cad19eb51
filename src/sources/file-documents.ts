// Incremental parsing of one multi-document YAML file. The text is cut into runs at its document start
// markers (`---` at the start of a line, which YAML ends every scalar and collection at), each known by
// the hash of its text. Only runs the caller does not already hold are parsed, so a one-document change
// to a 2,000-document file parses one document; the caller keeps the parsed runs and shifts their lines.
import { hash as digest } from 'node:crypto';
import type { Diagnostic } from '../model/diagnostics.js';
import type { KubeObject } from '../model/objects.js';
import { parseYamlPortable, type PortableObject, type PortableText } from './yaml.js';

/** A stretch of the file from one document start marker to the next. */
export interface DocumentRun {
  /** sha256 of the run's text: the same text parses to the same objects wherever it stands. */
  hash: string;
  /** Lines of the file before the run: its objects' lines are relative to it. */
  startLine: number;
  /** The run's objects, with lines counted from the run's first line; absent when the caller has it. */
  objects?: PortableObject[];
  /** The run had a problem (its own parse reported one): the caller must not reuse it. */
  problems?: boolean;
}

/** A file read in runs; `diagnostics` and `broken` are those a parse of the whole file gives. */
export interface DocumentsFile {
  runs: DocumentRun[];
  diagnostics: Diagnostic[];
  broken: boolean;
  /** YAML documents parsed to answer (for tests and benchmarks: the cost of a change). */
  parsedDocuments: number;
}

/**
 * Parses the runs of `text` whose hash is not in `known`. A run with any problem is not reused by the
 * caller (it has to report it again), and when there is one the whole file is parsed once more so
 * that every message and line is exactly a whole-file parse's.
 */
export function parseDocuments(
  file: string,
  text: string,
  known: ReadonlySet<string>,
  keep?: (o: KubeObject) => boolean,
): DocumentsFile {
  const runs: DocumentRun[] = [];
  let parsedDocuments = 0;
  let firstProblem: PortableText | undefined;
  for (const { start, end, startLine } of cutRuns(text)) {
    const runText = text.slice(start, end);
    const hash = digest('sha256', runText, 'base64');
    if (known.has(hash)) {
      runs.push({ hash, startLine });
      continue;
    }
    const parsed = parseYamlPortable(file, runText, keep);
    parsedDocuments += parsed.documents;
    const problems = parsed.diagnostics.length > 0;
    if (problems) firstProblem ??= parsed;
    runs.push({ hash, startLine, objects: parsed.objects, problems });
  }
  if (!firstProblem) return { runs, diagnostics: [], broken: false, parsedDocuments };
  // Messages name lines and columns, and a run can end where the whole file does not: ask the file.
  const whole = runs.length === 1 ? firstProblem : parseYamlPortable(file, text, keep);
  if (whole !== firstProblem) parsedDocuments += whole.documents;
  return { runs, diagnostics: whole.diagnostics, broken: whole.broken, parsedDocuments };
}

interface RunBounds {
  start: number;
  end: number;
  startLine: number;
}

/**
 * Where each run starts and ends. A file with a directive is one run, parsed whole on any change: a
 * `%YAML 1.1` holds for the documents after it too. (A lone `\r` or a byte order mark before `---`
 * makes no marker for YAML either: only `\n---` cuts.)
 */
export function cutRuns(text: string): RunBounds[] {
  if (/^%/m.test(text)) return [{ start: 0, end: text.length, startLine: 0 }];
  const runs: RunBounds[] = [];
  let start = 0;
  let startLine = 0;
  let line = 0;
  let lineStart = 0;
  for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', lineStart)) {
    lineStart = nl + 1;
    line++;
    if (isDocumentStart(text, lineStart)) {
      runs.push({ start, end: lineStart, startLine });
      start = lineStart;
      startLine = line;
    }
  }
  runs.push({ start, end: text.length, startLine });
  return runs;
}

/** `---` followed by a space, a tab, a line break or the end (YAML's document start marker). */
function isDocumentStart(text: string, at: number): boolean {
  if (!text.startsWith('---', at)) return false;
  const next = text[at + 3];
  return next === undefined || next === ' ' || next === '\t' || next === '\n' || next === '\r';
}
