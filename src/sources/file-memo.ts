// What the file source remembers of each file between reloads: the runs of documents it parsed (so only
// changed documents are parsed again, and unchanged ones keep their objects: the model's memos find
// them by identity), the stamp of the version read (an unchanged file is not read again), and the last
// good objects (served while the file does not parse).
import type { Diagnostic } from '../model/diagnostics.js';
import type { SourcedObject } from '../model/objects.js';
import type { LoadedFile } from './file-load.js';
import { sourcedObject, type PortableObject } from './yaml.js';

/** What one file adds to the source's state. */
export interface FileContribution {
  objects: SourcedObject[];
  diagnostics: Diagnostic[];
}

interface Run {
  startLine: number;
  portable: PortableObject[];
  objects: SourcedObject[];
}

interface FileMemo {
  /** The stamp of the version `served` is from, when a change to the file will change it. */
  stamp?: string;
  runs: Map<string, Run>;
  lastGood?: SourcedObject[];
  served: FileContribution;
}

export class FileMemos {
  private readonly files = new Map<string, FileMemo>();

  /** The hashes of the runs held for `file`: the parser need not parse them again. */
  known(file: string): Set<string> {
    return new Set(this.files.get(file)?.runs.keys());
  }

  /** What `file` gave last time, if its stamp says it has not changed since. */
  unchanged(file: string, stamp: string | undefined): FileContribution | undefined {
    const memo = this.files.get(file);
    return stamp !== undefined && memo?.stamp === stamp ? memo.served : undefined;
  }

  /**
   * What `file` gives now that it was read as `loaded`. Undefined if `loaded` reuses a run this memo
   * no longer holds (another read of the file came between): read it again with nothing known.
   */
  accept(file: string, loaded: LoadedFile): FileContribution | undefined {
    const memo = this.files.get(file);
    const runs = new Map<string, Run>();
    const objects: SourcedObject[] = [];
    for (const { hash, startLine, objects: portable, problems } of loaded.runs) {
      const old = portable ? undefined : memo?.runs.get(hash);
      if (!portable && !old) return undefined;
      let run = old?.startLine === startLine ? old : undefined;
      if (!run) {
        const parsed = portable ?? old!.portable;
        run = { startLine, portable: parsed, objects: parsed.map((o) => sourcedObject(file, o, startLine)) };
      }
      if (!problems) runs.set(hash, run);
      objects.push(...run.objects);
    }
    const lastGood = loaded.broken ? memo?.lastGood : objects;
    const diagnostics = [...loaded.diagnostics];
    if (loaded.broken && lastGood) {
      diagnostics.push({
        ...diagnostics[0]!,
        severity: 'warning',
        reason: 'KeptLastGood',
        message: 'serving the objects of the last good version of this file',
      });
    }
    const served = { objects: lastGood ?? [], diagnostics };
    // A file that was not read (too large, unreadable) keeps its runs for when it is read again.
    const kept = loaded.runs.length === 0 && memo ? memo.runs : runs;
    this.files.set(file, { stamp: loaded.stamp, runs: kept, lastGood, served });
    return served;
  }

  /** Forgets the files that are gone. */
  retain(files: ReadonlySet<string>): void {
    for (const file of this.files.keys()) if (!files.has(file)) this.files.delete(file);
  }
}
