// When the pipeline applies source events: a lone event at once; events that find the process busy
// wait for the maximum delay, so several changes share one rebuild and one fan-out.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { defaultModelOptions } from '../../src/model/tunnel.js';
import type { SourcedObject } from '../../src/model/objects.js';
import { Pipeline, type ModelSink } from '../../src/pipeline.js';
import type { Source, SourceState } from '../../src/sources/source.js';
import { waitFor } from '../helpers/wait.js';

class PushSource implements Source {
  private onChange?: (state: SourceState) => void;
  async start(onChange: (state: SourceState) => void): Promise<void> {
    this.onChange = onChange;
    onChange({ objects: [], diagnostics: [] });
  }
  push(objects: SourcedObject[] = []): void {
    this.onChange!({ objects, diagnostics: [] });
  }
  async stop(): Promise<void> {}
  describe(): string {
    return 'test';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps the event loop working for `ms`, as handing a change to 1,000 streams does. */
function work(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

async function started(maxDelayMs: number) {
  const source = new PushSource();
  let models = 0;
  const sink: ModelSink = { setModel: () => void models++, diagnostics: () => [] };
  const pipeline = new Pipeline(source, sink, { ...defaultModelOptions, maxDelayMs }, pino({ level: 'silent' }));
  await pipeline.start();
  return { source, pipeline, models: () => models };
}

describe('pipeline timing', () => {
  it('applies a lone event at once, after a quiet spell', async () => {
    const { source, pipeline, models } = await started(100);
    await sleep(50);
    source.push();
    expect(models()).toBe(2);
    await pipeline.stop();
  });

  it('holds events that find the loop busy for the maximum delay, then applies them as one', async () => {
    const { source, pipeline, models } = await started(1000);
    work(60);
    source.push();
    // Neither at once nor after the 20 ms quiet time: the loop worked all the time since the last rebuild.
    expect(models()).toBe(1);
    await sleep(50);
    expect(models()).toBe(1);
    work(250);
    source.push();
    await waitFor('the held events to be applied', () => models() === 2);
    expect(pipeline.rebuilds).toBe(2);
    // Idle again: the next event is applied at once.
    await sleep(50);
    source.push();
    expect(models()).toBe(3);
    await pipeline.stop();
  });

  it('applies an event at once when the last rebuild is longer ago than the maximum delay, busy or not', async () => {
    const { source, pipeline, models } = await started(100);
    // The last rebuild 150 ms ago and the loop busy since (the last change's ACKs): not a burst.
    work(150);
    source.push();
    expect(models()).toBe(2);
    await pipeline.stop();
  });
});
