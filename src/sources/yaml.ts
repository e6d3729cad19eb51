// Multi-document YAML to Kubernetes objects, keeping line numbers for every field.
import { LineCounter, parseAllDocuments, isMap } from 'yaml';
import type { Diagnostic } from '../model/diagnostics.js';
import type { FieldPath, KubeObject, SourcedObject } from '../model/objects.js';

export interface ParsedFile {
  objects: SourcedObject[];
  diagnostics: Diagnostic[];
  /** True when the file could not be read as YAML at all: its last good objects should stay. */
  broken: boolean;
}

function fileDiagnostic(file: string, line: number | undefined, message: string, reason = 'InvalidYAML'): Diagnostic {
  return { severity: 'error', reason, object: { kind: 'File', namespace: '', name: file }, path: [], message, origin: { file, line } };
}

export function parseYamlObjects(file: string, text: string): ParsedFile {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const diagnostics: Diagnostic[] = [];
  const objects: SourcedObject[] = [];
  const list = Array.isArray(docs) ? docs : [docs];
  let broken = false;
  for (const doc of list) {
    if (doc.errors.length > 0) {
      broken = true;
      for (const e of doc.errors) diagnostics.push(fileDiagnostic(file, e.linePos?.[0]?.line, e.message.split('\n')[0] ?? e.message));
      continue;
    }
    if (doc.contents === null) continue;
    const line = doc.contents.range ? lineCounter.linePos(doc.contents.range[0]).line : undefined;
    if (!isMap(doc.contents)) {
      diagnostics.push(fileDiagnostic(file, line, 'each YAML document must be a Kubernetes object (a mapping)', 'InvalidObject'));
      continue;
    }
    const object = doc.toJS() as KubeObject;
    const lineOf = (path: FieldPath): number | undefined => {
      // The deepest existing node on the path: a missing field points at its parent.
      for (let n = path.length; n >= 0; n--) {
        const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node?.range) return lineCounter.linePos(node.range[0]).line;
      }
      return line;
    };
    objects.push({ object, origin: { file, line, lineOf } });
  }
  return { objects, diagnostics, broken };
}
