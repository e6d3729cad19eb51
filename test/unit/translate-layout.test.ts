// The layout of model and translate, checked on their import lines: the model never imports translate
// (imports run down the pipeline), and the three role translators are siblings that share builders
// (one module per Envoy concept) and never import each other or the model builder.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const src = path.join(path.dirname(new URL(import.meta.url).pathname), '../../src');
const roles = ['originate', 'relay', 'terminate'];

/** The files `file` (relative to src/) imports, relative to src/ and without extension. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(src, file), 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) =>
    path.relative(src, path.resolve(path.dirname(path.join(src, file)), m[1]!)).replace(/\.js$/, ''),
  );
}

const filesIn = (dir: string) => fs.readdirSync(path.join(src, dir)).filter((f) => f.endsWith('.ts'));

describe('model and translate layout', () => {
  it('the model imports nothing from translate', () => {
    const upward = filesIn('model').flatMap((f) =>
      importsOf(`model/${f}`)
        .filter((i) => i.startsWith('translate/'))
        .map((i) => `model/${f} imports ${i}`),
    );
    expect(upward).toEqual([]);
  });

  it('role translators import builders, never another role or the model builder', () => {
    const crossing = roles.flatMap((role) =>
      importsOf(`translate/${role}.ts`)
        .filter((i) => roles.some((r) => i === `translate/${r}`) || i === 'model/build')
        .map((i) => `translate/${role}.ts imports ${i}`),
    );
    expect(crossing).toEqual([]);
  });

  it('builders import no role translator', () => {
    const builders = filesIn('translate').filter((f) => !roles.includes(f.replace(/\.ts$/, '')) && f !== 'index.ts');
    const upward = builders.flatMap((f) =>
      importsOf(`translate/${f}`)
        .filter((i) => roles.some((r) => i === `translate/${r}`))
        .map((i) => `translate/${f} imports ${i}`),
    );
    expect(upward).toEqual([]);
  });
});
