// Property-based fuzzing of the input side: every annotation parser (each row of the annotation table,
// so new rows are fuzzed too) and the file source (random and mutated YAML, bytes that are not UTF-8).
// Properties: nothing throws, and nothing served fails the resource check; served resources go, a batch
// at a time, through a real `envoy --mode validate` (envoy-check.ts, batches.ts).
import fc from 'fast-check';
import { parseTunnelSettings } from '../../src/model/annotations.js';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import type { KubeObject } from '../../src/model/objects.js';
import { render, type Rendered } from '../../src/render.js';
import { decodeUtf8, parseYamlPortable, withLines } from '../../src/sources/yaml.js';
import { roles, type Role } from '../../src/translate/view.js';
import { serviceDocs, serviceInput, yamlFileBytes } from './objects.js';

export { serviceBatch, serviceDocs } from './objects.js';

/** What a property found wrong: a resource the resource check refused means a value got past its parser. */
function refused(rendered: Rendered): string | undefined {
  const bad = rendered.diagnostics.find((d) => d.reason === 'InvalidResource');
  return bad && formatDiagnostic(bad);
}

export function renderAll(objects: unknown[]): Record<Role, Rendered> {
  const state = { objects: objects.map((object) => ({ object: object as KubeObject })), diagnostics: [] };
  return Object.fromEntries(roles.map((role) => [role, render(state, { role })])) as Record<Role, Rendered>;
}

export interface FuzzCounts {
  annotationCases: number;
  fileCases: number;
  filesThatParsed: number;
  servicesServed: number;
}

/** Runs both properties; throws (with fast-check's counterexample and seed) on the first failure. */
export function fuzzInputs(options: { seed: number; runs: number }): FuzzCounts {
  const counts: FuzzCounts = { annotationCases: 0, fileCases: 0, filesThatParsed: 0, servicesServed: 0 };
  const params = { seed: options.seed, numRuns: options.runs, endOnFailure: true };
  fc.assert(
    fc.property(fc.array(serviceInput(), { minLength: 1, maxLength: 3 }), (services) => {
      counts.annotationCases++;
      for (const s of services) parseTunnelSettings(s.annotations);
      const rendered = renderAll(services.flatMap(serviceDocs));
      counts.servicesServed += rendered.originate.resources.listeners.length;
      const problem = roles.map((r) => refused(rendered[r])).find(Boolean);
      if (problem) throw new Error(`a value got past its parser: ${problem}`);
    }),
    params,
  );
  fc.assert(
    fc.property(yamlFileBytes, (bytes) => {
      counts.fileCases++;
      const decoded = decodeUtf8('fuzz.yaml', bytes);
      if ('error' in decoded) return;
      const file = withLines('fuzz.yaml', parseYamlPortable('fuzz.yaml', decoded.text));
      if (!file.broken) counts.filesThatParsed++;
      for (const role of roles) {
        const problem = refused(render({ objects: file.objects, diagnostics: [] }, { role }));
        if (problem) throw new Error(`a value got past its parser: ${problem}`);
      }
    }),
    params,
  );
  return counts;
}
