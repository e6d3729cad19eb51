// The main thread's side of the parse worker (parse-worker.ts): one file at a time, a deadline per
// file, and a worker that is replaced when it runs out of memory or time. stop() ends it at once.
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { refusal, type LoadedFile } from './file-load.js';
import type { ParseRequest } from './parse-worker.js';

/** The worker's heap, and the time one file may take: a file that needs more is an error, the worker replaced. */
const heapMb = 1024;
const deadlineMs = 60_000;

/**
 * A worker on the entry next to this module: compiled .js in dist; in tests and `tsx` runs the .ts
 * source, loaded through tsx's API (a worker does not take `--import tsx` loader hooks on Node 20).
 */
function startWorker(options: WorkerOptions): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./parse-worker.js', here), options);
  const entry = new URL('./parse-worker.ts', here).href;
  const tsx = pathToFileURL(
    createRequire(here)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const [api, url] = [JSON.stringify(tsx), JSON.stringify(entry)];
  const code = `import(${api}).then((tsx) => tsx.tsImport(${url}, ${url}))`;
  return new Worker(code, { ...options, eval: true });
}

export class FileParser {
  private worker?: Worker;
  private nextId = 0;
  private pending?: { id: number; file: string; resolve: (p: LoadedFile) => void; timer: NodeJS.Timeout };
  private stopped = false;

  /** Parses the documents of `file` whose runs are not among `known` (hashes of runs the caller holds). */
  parse(file: string, maxBytes: number, known: ReadonlySet<string> = new Set()): Promise<LoadedFile> {
    if (this.stopped) return Promise.resolve(failed(file, 'the source was stopped'));
    if (this.pending) throw new Error('FileParser parses one file at a time');
    const worker = this.ensureWorker();
    return new Promise((resolve) => {
      const id = ++this.nextId;
      const timer = setTimeout(() => this.fail(`took longer than ${deadlineMs / 1000} s to parse`), deadlineMs);
      this.pending = { id, file, resolve, timer };
      worker.postMessage({ id, file, maxBytes, known: [...known] } satisfies ParseRequest);
    });
  }

  /** Ends the worker now, even mid-parse (shutdown must not wait for a parse). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.fail('the source was stopped');
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker({ resourceLimits: { maxOldGenerationSizeMb: heapMb } });
    worker.unref();
    worker.on('message', (m: { id: number; parsed: LoadedFile }) => {
      if (m.id !== this.pending?.id) return;
      const { resolve, timer } = this.pending;
      clearTimeout(timer);
      this.pending = undefined;
      resolve(m.parsed);
    });
    // A worker already replaced (terminated by fail()) reports nothing more.
    worker.on(
      'error',
      (err) =>
        this.worker === worker &&
        this.fail(
          (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `needs more than ${heapMb} MB to parse`
            : `could not be parsed (${err.message})`,
        ),
    );
    worker.on('exit', () => this.worker === worker && this.fail('could not be parsed (the parser exited)'));
    this.worker = worker;
    return worker;
  }

  /** Answers the file in flight with an error and drops the worker, which may be stuck or spent. */
  private fail(message: string): void {
    const worker = this.worker;
    this.worker = undefined;
    void worker?.terminate();
    const pending = this.pending;
    if (!pending) return;
    this.pending = undefined;
    clearTimeout(pending.timer);
    pending.resolve(failed(pending.file, message));
  }
}

const failed = (file: string, message: string) => refusal(file, message, 'ParseError');
