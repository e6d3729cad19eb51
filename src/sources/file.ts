// The embedded default source: Kubernetes objects from a YAML file or a folder of them, reloaded on
// change. A file that stops parsing keeps its last good objects. Files are bounded (per file and in
// total) and, when serving, parsed in a worker thread, so a huge file cannot stall the process.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { isModelObject } from '../model/objects.js';
import { FileParser } from './file-parser.js';
import { formatBytes, loadYamlFile, MiB, refusal, tooLarge } from './file-load.js';
import type { Source, SourceState } from './source.js';
import { withLines, type ParsedFile, type PortableFile } from './yaml.js';

const yamlFile = /\.ya?ml$/;

export interface FileLimits {
  /** Bytes per file (serve --max-file-size): a larger file is not read. */
  maxFileBytes: number;
  /** Bytes of a folder's files together (serve --max-source-size): files past it, in name order, are not read. */
  maxTotalBytes: number;
}

export const defaultFileLimits: FileLimits = { maxFileBytes: 8 * MiB, maxTotalBytes: 64 * MiB };

/** A file to read, or the error that refused it by its size. */
interface Planned {
  file: string;
  refused?: PortableFile;
}

export class FileSource implements Source {
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly lastGood = new Map<string, ParsedFile>();
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

  /** Reads everything now, parsing in this thread: for `render` and tests. */
  read(): SourceState {
    const plan = this.plan();
    const parsed = plan.map((p) => p.refused ?? loadYamlFile(p.file, this.limits.maxFileBytes, isModelObject));
    return this.assemble(plan, parsed);
  }

  /** Reads everything, parsing in the worker one file at a time (the peak memory is one file's). */
  async readAsync(): Promise<SourceState> {
    const plan = this.plan();
    const parsed: PortableFile[] = [];
    for (const p of plan) parsed.push(p.refused ?? (await this.parser.parse(p.file, this.limits.maxFileBytes)));
    return this.assemble(plan, parsed);
  }

  /** The files to read, in name order; those over the per-file or the total limit are refused unread. */
  private plan(): Planned[] {
    let total = 0;
    return this.files().map((file): Planned => {
      const size = sizeOf(file);
      if (size > this.limits.maxFileBytes) return { file, refused: tooLarge(file, size, this.limits.maxFileBytes) };
      total += size;
      if (total <= this.limits.maxTotalBytes) return { file };
      const limit = `${formatBytes(this.limits.maxTotalBytes)} (serve --max-source-size)`;
      const message = `is not read: with it the files come to more than ${limit}; files are read in name order`;
      return { file, refused: refusal(file, message, 'SourceTooLarge') };
    });
  }

  private assemble(plan: Planned[], results: PortableFile[]): SourceState {
    const state: SourceState = { objects: [], diagnostics: [] };
    plan.forEach(({ file }, i) => {
      const parsed = withLines(file, results[i]!);
      const previous = this.lastGood.get(file);
      if (parsed.broken && previous) {
        state.objects.push(...previous.objects);
        parsed.diagnostics.push({
          ...parsed.diagnostics[0]!,
          severity: 'warning',
          reason: 'KeptLastGood',
          message: 'serving the objects of the last good version of this file',
        });
      } else if (!parsed.broken) {
        this.lastGood.set(file, parsed);
      }
      if (!parsed.broken) state.objects.push(...parsed.objects);
      state.diagnostics.push(...parsed.diagnostics);
    });
    const files = new Set(plan.map((p) => p.file));
    for (const file of this.lastGood.keys()) if (!files.has(file)) this.lastGood.delete(file);
    return state;
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
        this.logger?.debug({ source: this.describe(), objects: state.objects.length }, 'source reloaded');
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

/** The size the file has now (0 if it is gone: the read then reports it). */
function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
