import type { FieldPath, ObjectRef, Origin } from './objects.js';

export type Severity = 'error' | 'warning';

/** A problem with one input object. It never stops other objects from being served. */
export interface Diagnostic {
  severity: Severity;
  /** Short machine-readable reason, e.g. InvalidAnnotation (also the Kubernetes Event reason). */
  reason: string;
  object: ObjectRef;
  /** Path of the offending field inside the object, e.g. ['metadata','annotations','tunnel-shim.io/tunnel']. */
  path: FieldPath;
  message: string;
  origin?: Origin;
}

export function fieldName(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** One line that names file, line, object and field, e.g. for logs and `render`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where: string[] = [];
  if (d.origin?.file) {
    const line = d.origin.lineOf?.(d.path) ?? d.origin.line;
    where.push(line ? `${d.origin.file}:${line}` : d.origin.file);
  }
  // A file-level problem (YAML that does not parse) has no object to name beyond the file itself.
  // Cluster-wide things (an API resource the source may not list) have no namespace.
  const { kind, namespace, name } = d.object;
  if (kind !== 'File') where.push(`${kind} ${namespace ? `${namespace}/` : ''}${name}`);
  if (d.path.length > 0) where.push(fieldName(d.path));
  return `${d.severity}: ${where.join(': ')}: ${d.message}`;
}
