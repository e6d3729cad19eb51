// Reading one YAML file of the file source, bounded: a file over the size limit is refused before a
// byte of it is parsed. Shared by `render` (in the caller's thread) and the serve path's parse worker.
import fs from 'node:fs';
import type { KubeObject } from '../model/objects.js';
import { decodeUtf8, fileDiagnostic, parseYamlPortable, type PortableFile } from './yaml.js';

export const MiB = 1024 * 1024;

/** `8 MiB`, `512 KiB`, `123 bytes`: sizes in messages. */
export function formatBytes(bytes: number): string {
  if (bytes >= MiB) return `${Number((bytes / MiB).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

export function tooLarge(file: string, size: number, maxBytes: number): PortableFile {
  const limit = `${formatBytes(maxBytes)} per file (serve --max-file-size)`;
  return refusal(file, `is ${formatBytes(size)}, over the limit of ${limit}; it is not read`, 'FileTooLarge');
}

/** A file that is not read: no objects, one error; it keeps its last good objects. */
export function refusal(file: string, message: string, reason: string): PortableFile {
  return { objects: [], broken: true, diagnostics: [fileDiagnostic(file, undefined, message, reason)] };
}

/** Reads and parses `file`, reading at most `maxBytes + 1` bytes even if it grew since it was listed. */
export function loadYamlFile(file: string, maxBytes: number, keep?: (o: KubeObject) => boolean): PortableFile {
  let bytes: Buffer;
  try {
    // A FIFO or device named *.yaml would block the reader forever.
    if (!fs.statSync(file).isFile()) throw new Error('is not a regular file');
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
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
  if ('error' in decoded) return { objects: [], broken: true, diagnostics: [decoded.error] };
  return parseYamlPortable(file, decoded.text, keep);
}
