// The embedded default source: Kubernetes objects from a YAML file or a folder of them, reloaded on
// change. A file that stops parsing keeps its last good objects. Files are bounded (per file and in
// total) and, when serving, parsed in a worker thread, so a huge file cannot stall the process. A reload
// parses only the documents that changed (file-documents.ts), of the files that changed (file-memo.ts).
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { isModelObject } from '../model/objects.js';
import { formatBytes, loadYamlFile, MiB, refusal, stampOf, tooLarge, type LoadedFile } from './file-load.js';
import { FileMemos, type FileContribution } from './file-memo.js';
import { FileParser } from './file-parser.js';
import type { Source, SourceState } from './source.js';

const yamlFile = /\.ya?ml$/;

export interface FileLimits {
  /** Bytes per file (serve --max-file-size): a larger file is not read. */
  maxFileBytes: number;
  /** Bytes of a folder's files together (serve --max-source-size): files past it, in name order, are not read. */
  maxTotalBytes: number;
}

export const defaultFileLimits: FileLimits = { maxFileBytes: 8 * MiB, maxTotalBytes: 64 * MiB };

/** A file to read (with the stamp it has now), or the error that refused it by its size. */
interface Planned {
  file: string;
  stamp?: string;
  refused?: LoadedFile;
}

export class FileSource implements Source {
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly memos = new FileMemos();
  private onChange?: (state: SourceState) => void;
  private readonly limits: FileLimits;
  private readonly parser = new FileParser();
  private loading?: Promise<void>;
  private reloadAgain = false;
  private stopped = false;

  constructor(
    private readonly target: string,
    private readonly logger?: Logger,
    /** Quiet time after a file event before reloading: editors write files in several steps. */
    private readonly settleMs = 50,
    limits: Partial<FileLimits> = {},
  ) {
    this.limits = { ...defaultFileLimits, ...limits };
  }

  describe(): string {
    return `file:${this.target}`;
  }

  /** Files read and parsed, and YAML documents parsed, since the start: a change costs what it changed. */
  readonly counts = { filesRead: 0, filesParsed: 0, documentsParsed: 0 };

  async start(onChange: (state: SourceState) => void): Promise<void> {
    this.onChange = onChange;
    const stat = fs.statSync(this.target);
    const dir = stat.isDirectory() ? this.target : path.dirname(this.target);
    // Watch the folder, not the file: editors replace files by renaming over them.
    this.watcher = fs.watch(dir, (_event, name) => {
      if (name && !this.isWatched(dir, name.toString())) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), this.settleMs);
    });
    this.reload();
    await this.loading;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watcher?.close();
    await this.parser.stop();
  }

  /** Reads what changed now, parsing in this thread: for `render` and tests. */
  read(): SourceState {
    const load = (file: string, known: Set<string>) =>
      this.count(loadYamlFile(file, this.limits.maxFileBytes, known, isModelObject));
    return this.assemble(
      this.plan().map(
        (p) =>
          this.withoutReading(p) ??
          this.memos.accept(p.file, load(p.file, this.memos.known(p.file))) ??
          this.memos.accept(p.file, load(p.file, new Set()))!,
      ),
    );
  }

  /**
   * Reads what changed, parsing in the worker one file at a time (the peak memory is one file's): files
   * whose stamp did not change are not read, and of the others only the documents that changed are parsed.
   */
  async readAsync(): Promise<SourceState> {
    const load = async (file: string, known: Set<string>) =>
      this.count(await this.parser.parse(file, this.limits.maxFileBytes, known));
    const parts: FileContribution[] = [];
    for (const p of this.plan()) {
      let part = this.withoutReading(p) ?? this.memos.accept(p.file, await load(p.file, this.memos.known(p.file)));
      // A read() in between dropped runs this answer reuses: parse the file whole.
      part ??= this.memos.accept(p.file, await load(p.file, new Set()))!;
      parts.push(part);
    }
    return this.assemble(parts);
  }

  private count(loaded: LoadedFile): LoadedFile {
    this.counts.filesRead++;
    this.counts.documentsParsed += loaded.parsedDocuments;
    if (loaded.parsedDocuments > 0) this.counts.filesParsed++;
    return loaded;
  }

  /** What a planned file gives without being read: its refusal, or what it gave last time if unchanged. */
  private withoutReading({ file, stamp, refused }: Planned): FileContribution | undefined {
    return refused ? this.memos.accept(file, refused) : this.memos.unchanged(file, stamp);
  }

  /** The files to read, in name order; those over the per-file or the total limit are refused unread. */
  private plan(): Planned[] {
    let total = 0;
    const plan = this.files().map((file): Planned => {
      const stats = statOf(file);
      const size = Number(stats?.size ?? 0);
      if (size > this.limits.maxFileBytes) return { file, refused: tooLarge(file, size, this.limits.maxFileBytes) };
      total += size;
      if (total <= this.limits.maxTotalBytes) return { file, stamp: stats && stampOf(stats) };
      const limit = `${formatBytes(this.limits.maxTotalBytes)} (serve --max-source-size)`;
      const message = `is not read: with it the files come to more than ${limit}; files are read in name order`;
      return { file, refused: refusal(file, message, 'SourceTooLarge') };
    });
    this.memos.retain(new Set(plan.map((p) => p.file)));
    return plan;
  }

  private assemble(parts: FileContribution[]): SourceState {
    return { objects: parts.flatMap((p) => p.objects), diagnostics: parts.flatMap((p) => p.diagnostics) };
  }

  /** One reload at a time; events during one make exactly one more after it. */
  private reload(): void {
    if (this.loading) {
      this.reloadAgain = true;
      return;
    }
    this.loading = (async () => {
      do {
        this.reloadAgain = false;
        this.logger?.debug({ source: this.describe() }, 'parsing files');
        let state: SourceState;
        try {
          state = await this.readAsync();
        } catch (err) {
          // The folder itself went away or became unreadable mid-read: keep what was delivered.
          this.logger?.error({ source: this.describe(), err: (err as Error).message }, 'cannot read the source');
          continue;
        }
        if (this.stopped) return;
        const { objects } = state;
        this.logger?.debug({ source: this.describe(), objects: objects.length, ...this.counts }, 'source reloaded');
        this.onChange?.(state);
      } while (this.reloadAgain && !this.stopped);
    })().finally(() => (this.loading = undefined));
  }

  private isWatched(dir: string, name: string): boolean {
    if (dir === this.target) return yamlFile.test(name);
    return path.join(dir, name) === path.resolve(this.target) || name === path.basename(this.target);
  }

  private files(): string[] {
    if (!fs.existsSync(this.target)) return [];
    if (!fs.statSync(this.target).isDirectory()) return [this.target];
    return fs
      .readdirSync(this.target)
      .filter((n) => yamlFile.test(n))
      .sort()
      .map((n) => path.join(this.target, n));
  }
}

/** The file's stats now (none if it is gone: the read then reports it). */
function statOf(file: string): fs.BigIntStats | undefined {
  try {
    return fs.statSync(file, { bigint: true });
  } catch {
    return undefined;
  }
}
