// Reading one YAML file of the file source, bounded: a file over the size limit is refused before a
// byte of it is parsed. Shared by `render` (in the caller's thread) and the serve path's parse worker.
import fs from 'node:fs';
import type { KubeObject } from '../model/objects.js';
import { parseDocuments, type DocumentsFile } from './file-documents.js';
import { decodeUtf8, fileDiagnostic } from './yaml.js';

/** A file as read: its documents, and the stamp of the version read when a later change will alter it. */
export interface LoadedFile extends DocumentsFile {
  stamp?: string;
}

/**
 * How long after its last change a file's stamp is trusted to tell a later change. Timestamps are as
 * coarse as the clock tick (a jiffy, a second or two on some file systems): a write within the same
 * tick as the version read, with the same size, would leave the stamp as it was.
 */
const settledMs = 2000;

/** Identifies a version of a file: a rename over it, a write or a truncation change it. */
export function stampOf(s: fs.BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

export const MiB = 1024 * 1024;

/** `8 MiB`, `512 KiB`, `123 bytes`: sizes in messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= MiB) return `${Number((bytes / MiB).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

export function tooLarge(file: string, size: number, maxBytes: number): LoadedFile {
  const limit = `${formatBytes(maxBytes)} per file (serve --max-file-size)`;
  return refusal(file, `is ${formatBytes(size)}, over the limit of ${limit}; it is not read`, 'FileTooLarge');
}

/** A file that is not read: no objects, one error; it keeps its last good objects. */
export function refusal(file: string, message: string, reason: string): LoadedFile {
  const diagnostics = [fileDiagnostic(file, undefined, message, reason)];
  return { runs: [], diagnostics, broken: true, parsedDocuments: 0 };
}

/**
 * Reads `file`, reading at most `maxBytes + 1` bytes even if it grew since it was listed, and parses the
 * documents whose text is not among `known` (the hashes of runs the caller holds).
 */
export function loadYamlFile(
  file: string,
  maxBytes: number,
  known: ReadonlySet<string> = new Set(),
  keep?: (o: KubeObject) => boolean,
): LoadedFile {
  let bytes: Buffer;
  let stamp: string | undefined;
  try {
    // A FIFO or device named *.yaml would block the reader forever.
    if (!fs.statSync(file).isFile()) throw new Error('is not a regular file');
    const fd = fs.openSync(file, 'r');
    try {
      const readAt = Date.now();
      const stats = fs.fstatSync(fd, { bigint: true });
      const size = Number(stats.size);
      const changedMs = Number((stats.mtimeNs > stats.ctimeNs ? stats.mtimeNs : stats.ctimeNs) / 1_000_000n);
      if (readAt - changedMs > settledMs) stamp = stampOf(stats);
      if (size > maxBytes) return tooLarge(file, size, maxBytes);
      bytes = Buffer.alloc(Math.min(size, maxBytes) + 1);
      let length = 0;
      while (length < bytes.length) {
        const n = fs.readSync(fd, bytes, length, bytes.length - length, null);
        if (n === 0) break;
        length += n;
      }
      if (length > maxBytes) return tooLarge(file, length, maxBytes);
      bytes = bytes.subarray(0, length);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return refusal(file, (err as Error).message, 'ReadError');
  }
  const decoded = decodeUtf8(file, bytes);
  if ('error' in decoded) return { runs: [], diagnostics: [decoded.error], broken: true, parsedDocuments: 0, stamp };
  return { ...parseDocuments(file, decoded.text, known, keep), stamp };
}
