// Batches of fuzzed Services through a real Envoy: each batch rendered per view, one `envoy --mode
// validate` per batch and view.
import fc from 'fast-check';
import { roles } from '../../src/translate/view.js';
import { envoyValidate, staticBootstrap, type Verdict } from './envoy-check.js';
import { renderAll, serviceBatch, serviceDocs } from './inputs.js';

export interface BatchResult {
  verdicts: Verdict[];
  /** Resources Envoy checked, over all batches and views. */
  resources: number;
}

export async function checkBatches(options: { seed: number; batches: number }): Promise<BatchResult> {
  const bootstraps = [];
  let resources = 0;
  for (const [i, batch] of fc.sample(serviceBatch, { seed: options.seed, numRuns: options.batches }).entries()) {
    const rendered = renderAll(batch.flatMap(serviceDocs));
    for (const role of roles) {
      const bootstrap = staticBootstrap(rendered[role], `fuzz-${i}-${role}`);
      resources += Object.values(rendered[role].resources).reduce((n, list) => n + list.length, 0);
      bootstraps.push({ name: `batch ${i} (${batch.length} Services), ${role}`, bootstrap });
    }
  }
  return { verdicts: await envoyValidate(bootstraps), resources };
}
