// Every annotation in the README's reference table has a golden case that translates it: a Service in
// some test/golden/CASE/in.yaml carries it with a value the model accepts. A new annotation without
// such a case fails here (an error case alone shows the check, not the Envoy fields it sets).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/build.js';
import { refKey, refOf } from '../../src/model/objects.js';
import { defaultModelOptions } from '../../src/model/tunnel.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import { goldenCases, readCase } from '../helpers/golden.js';
import { repo } from '../helpers/repo.js';

/** The annotations of the README's "Annotation reference" table, in its order. */
function readmeAnnotations(): string[] {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  return [...readme.matchAll(/^\| `(tunnel-shim\.io\/[a-z-]+)` \|/gm)].map((m) => m[1]!);
}

/** Per annotation, the cases where a Service carries it and the model reports nothing about it. */
function translatedAnnotations(): Map<string, string[]> {
  const cases = new Map<string, string[]>();
  for (const name of goldenCases()) {
    const { objects } = parseYamlObjects(`${name}/in.yaml`, readCase(name));
    const refused = new Set(
      buildModel(objects, defaultModelOptions).diagnostics.map((d) => `${refKey(d.object)} ${d.path.at(-1)}`),
    );
    for (const { object } of objects) {
      if (object.kind !== 'Service') continue;
      for (const annotation of Object.keys(object.metadata?.annotations ?? {})) {
        if (refused.has(`${refKey(refOf(object))} ${annotation}`)) continue;
        cases.set(annotation, [...(cases.get(annotation) ?? []), name]);
      }
    }
  }
  return cases;
}

describe('golden cases cover the annotation reference', () => {
  it('every annotation in the README table is translated by at least one golden case', () => {
    const annotations = readmeAnnotations();
    expect(annotations.length).toBeGreaterThan(20);
    const covered = translatedAnnotations();
    expect(annotations.filter((a) => !covered.has(a))).toEqual([]);
  });
});
