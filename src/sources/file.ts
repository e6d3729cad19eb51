// The embedded default source: Kubernetes objects from a YAML file or a folder of them, reloaded on
// change. A file that stops parsing keeps its last good objects.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Source, SourceState } from './source.js';
import { parseYamlObjects, type ParsedFile } from './yaml.js';

const yamlFile = /\.ya?ml$/;

export class FileSource implements Source {
  private watcher?: fs.FSWatcher;
  private timer?: NodeJS.Timeout;
  private readonly lastGood = new Map<string, ParsedFile>();
  private onChange?: (state: SourceState) => void;

  constructor(
    private readonly target: string,
    private readonly logger?: Logger,
    /** Quiet time after a file event before reloading: editors write files in several steps. */
    private readonly settleMs = 50,
  ) {}

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
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  /** Reads everything now; also used by `render`. */
  read(): SourceState {
    const files = this.files();
    const state: SourceState = { objects: [], diagnostics: [] };
    for (const file of files) {
      let parsed: ParsedFile;
      try {
        parsed = parseYamlObjects(file, fs.readFileSync(file, 'utf8'));
      } catch (err) {
        parsed = { objects: [], broken: true, diagnostics: [{ severity: 'error', reason: 'ReadError', object: { kind: 'File', namespace: '', name: file }, path: [], message: (err as Error).message, origin: { file } }] };
      }
      const previous = this.lastGood.get(file);
      if (parsed.broken && previous) {
        state.objects.push(...previous.objects);
        parsed.diagnostics.push({ ...parsed.diagnostics[0]!, severity: 'warning', reason: 'KeptLastGood', message: 'serving the objects of the last good version of this file' });
      } else if (!parsed.broken) {
        this.lastGood.set(file, parsed);
      }
      if (!parsed.broken) state.objects.push(...parsed.objects);
      state.diagnostics.push(...parsed.diagnostics);
    }
    for (const file of this.lastGood.keys()) if (!files.includes(file)) this.lastGood.delete(file);
    return state;
  }

  private reload() {
    const state = this.read();
    this.logger?.debug({ source: this.describe(), objects: state.objects.length }, 'source reloaded');
    this.onChange?.(state);
  }

  private isWatched(dir: string, name: string): boolean {
    if (dir === this.target) return yamlFile.test(name);
    return path.join(dir, name) === path.resolve(this.target) || name === path.basename(this.target);
  }

  private files(): string[] {
    if (!fs.existsSync(this.target)) return [];
    if (!fs.statSync(this.target).isDirectory()) return [this.target];
    return fs.readdirSync(this.target).filter((n) => yamlFile.test(n)).sort().map((n) => path.join(this.target, n));
  }
}
