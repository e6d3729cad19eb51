// Multi-document YAML to Kubernetes objects, keeping line numbers for every field. The parsed form is
// plain data (a line table per object instead of the YAML tree), so a worker thread can parse a file
// and hand the result over; `withLines` turns it back into objects whose diagnostics name lines.
import { LineCounter, parseAllDocuments, isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Diagnostic } from '../model/diagnostics.js';
import type { FieldPath, KubeObject, SourcedObject } from '../model/objects.js';

export interface ParsedFile {
  objects: SourcedObject[];
  diagnostics: Diagnostic[];
  /** True when the file could not be read as YAML at all: its last good objects should stay. */
  broken: boolean;
}

/** One object as plain data: its first line and the line of each of its fields (path joined by NUL). */
export interface PortableObject {
  object: KubeObject;
  line?: number;
  lines: Map<string, number>;
}

export interface PortableFile {
  objects: PortableObject[];
  diagnostics: Diagnostic[];
  broken: boolean;
}

/** A parsed text, with how many YAML documents it held (the cost of parsing it). */
export interface PortableText extends PortableFile {
  documents: number;
}

const pathKey = (path: readonly (string | number)[]) => path.join('\u0000');

/** An error about a whole file (no object in it to name). */
export function fileDiagnostic(
  file: string,
  line: number | undefined,
  message: string,
  reason = 'InvalidYAML',
): Diagnostic {
  const object = { kind: 'File', namespace: '', name: file };
  return { severity: 'error', reason, object, path: [], message, origin: { file, line } };
}

/**
 * The text of a file's bytes, or an error naming the line of the first byte that is not UTF-8: a
 * replacement character silently standing in for it would reach Envoy as a different value.
 */
export function decodeUtf8(file: string, bytes: Uint8Array): { text: string } | { error: Diagnostic } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes) };
  } catch {
    const at = firstInvalidByte(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    const hex = (bytes[at] ?? 0).toString(16).padStart(2, '0');
    const message = `is not valid UTF-8: byte 0x${hex} at offset ${at} does not belong to a UTF-8 character`;
    return { error: fileDiagnostic(file, line, message, 'InvalidUTF8') };
  }
}

/** Offset of the first byte the lenient decoder replaced (a U+FFFD that was not written as one). */
function firstInvalidByte(bytes: Uint8Array): number {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let offset = 0;
  let from = 0;
  for (let idx = text.indexOf('\uFFFD'); idx >= 0; idx = text.indexOf('\uFFFD', idx + 1)) {
    // Everything before the first invalid byte decoded as itself, so its byte length is its offset.
    offset += Buffer.byteLength(text.slice(from, idx));
    from = idx;
    if (!(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) return offset;
  }
  return bytes.length;
}

/** Parses every document; `keep` drops objects nobody reads before they are handed anywhere. */
export function parseYamlPortable(file: string, text: string, keep = (_o: KubeObject) => true): PortableText {
  const lineCounter = new LineCounter();
  // Warnings (an unknown %directive) stay out of the process's stderr: a file is not a log.
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  const diagnostics: Diagnostic[] = [];
  const objects: PortableObject[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  let broken = false;
  for (const doc of list) {
    if (doc.errors.length > 0) {
      broken = true;
      for (const e of doc.errors)
        diagnostics.push(fileDiagnostic(file, e.linePos?.[0]?.line, e.message.split('\n')[0] ?? e.message));
      continue;
    }
    if (doc.contents === null) continue;
    const line = doc.contents.range ? lineCounter.linePos(doc.contents.range[0]).line : undefined;
    if (!isMap(doc.contents)) {
      diagnostics.push(
        fileDiagnostic(file, line, 'each YAML document must be a Kubernetes object (a mapping)', 'InvalidObject'),
      );
      continue;
    }
    let object: KubeObject;
    try {
      object = doc.toJS() as KubeObject;
    } catch (err) {
      // e.g. aliases expanding past the parser's budget (a "billion laughs" document).
      broken = true;
      diagnostics.push(fileDiagnostic(file, line, (err as Error).message.split('\n')[0] ?? 'cannot be read'));
      continue;
    }
    if (!keep(object)) continue;
    const lines = new Map<string, number>();
    collectLines(doc.contents, [], lines, lineCounter);
    objects.push({ object, line, lines });
  }
  return { objects, diagnostics, broken, documents: list.length };
}

function collectLines(node: unknown, path: (string | number)[], lines: Map<string, number>, lc: LineCounter): void {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  if (range) lines.set(pathKey(path), lc.linePos(range[0]).line);
  if (isAlias(node)) return;
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      collectLines(pair.value, [...path, key], lines, lc);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => collectLines(item, [...path, i], lines, lc));
  }
}

/** Objects whose diagnostics can name the line of a field (the deepest existing node on its path). */
export function withLines(file: string, parsed: PortableFile): ParsedFile {
  const objects = parsed.objects.map((o) => sourcedObject(file, o));
  return { objects, diagnostics: parsed.diagnostics, broken: parsed.broken };
}

/** One object with its origin; `lineOffset` lines of the file come before the text it was parsed from. */
export function sourcedObject(file: string, { object, line, lines }: PortableObject, lineOffset = 0): SourcedObject {
  const shift = (n: number | undefined) => (n === undefined ? undefined : n + lineOffset);
  const lineOf = (path: FieldPath): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const found = lines.get(pathKey(path.slice(0, n)));
      if (found !== undefined) return found + lineOffset;
    }
    return shift(line);
  };
  return { object, origin: { file, line: shift(line), lineOf } };
}

export function parseYamlObjects(file: string, text: string): ParsedFile {
  return withLines(file, parseYamlPortable(file, text));
}
