// Golden translation tests, one scenario per case as Envoy Gateway's testdata: objects in
// (test/golden/CASE/in.yaml, its first line names the views), and per view what it is served, a file
// per resource kind (out/VIEW/clusters.yaml ...), with the diagnostics in out/VIEW/diagnostics.yaml.
// Empty kinds have no file. Regenerate with UPDATE_GOLDEN=1 and review the diff like code.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/build.js';
import { defaultModelOptions, type Tunnel } from '../../src/model/tunnel.js';
import { diagnosticLines, render } from '../../src/render.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import { objectOf } from '../../src/translate/resources.js';
import { concerns, tunnelsConcerning } from '../../src/translate/scope.js';
import { translateTerminate } from '../../src/translate/terminate.js';
import type { NodeView, Role } from '../../src/translate/view.js';
import { goldenCases, goldenDir, readCase } from '../helpers/golden.js';

function viewsOf(text: string): NodeView[] {
  const line = /^# views: (.+)$/m.exec(text)?.[1];
  if (!line) throw new Error('the first line of in.yaml names the views: # views: originate, terminate@10.0.0.1');
  return line.split(',').map((v) => {
    const [role, address] = v.trim().split('@');
    return { role: role as Role, ...(address ? { listenAddress: address } : {}) };
  });
}

const yaml = (value: unknown) => YAML.stringify(value, { aliasDuplicateObjects: false, lineWidth: 0 });

/** Every file a case's out/ directory should hold, by path relative to it. */
function expectedFiles(name: string, text: string): Map<string, string> {
  const parsed = parseYamlObjects(`${name}/in.yaml`, text);
  const files = new Map<string, string>();
  for (const view of viewsOf(text)) {
    const dir = view.listenAddress ? `${view.role}@${view.listenAddress}` : view.role;
    const { resources, diagnostics } = render({ objects: parsed.objects, diagnostics: parsed.diagnostics }, view);
    if (diagnostics.length) files.set(`${dir}/diagnostics.yaml`, yaml(diagnosticLines(diagnostics)));
    for (const [kind, list] of Object.entries(resources)) if (list.length) files.set(`${dir}/${kind}.yaml`, yaml(list));
  }
  return files;
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => fs.statSync(path.join(dir, f)).isFile());
}

describe('golden translation', () => {
  for (const name of goldenCases()) {
    it(name, () => {
      const outDir = path.join(goldenDir, name, 'out');
      const expected = expectedFiles(name, readCase(name));
      // A new case gets its outputs on its first run; review them before committing.
      if (process.env.UPDATE_GOLDEN || !fs.existsSync(outDir)) {
        fs.rmSync(outDir, { recursive: true, force: true });
        for (const [file, text] of expected) {
          fs.mkdirSync(path.dirname(path.join(outDir, file)), { recursive: true });
          fs.writeFileSync(path.join(outDir, file), text);
        }
      }
      expect(filesUnder(outDir).sort()).toEqual([...expected.keys()].sort());
      for (const [file, text] of expected) expect(text, file).toBe(fs.readFileSync(path.join(outDir, file), 'utf8'));
    });

    // Bound terminators are translated from only the tunnels that concern them (translate/scope.ts):
    // that must give exactly what translating from every tunnel gives, for each endpoint IP.
    it(`${name}: a bound terminator's tunnels are all it needs`, () => {
      const model = buildModel(parseYamlObjects(`${name}/in.yaml`, readCase(name)).objects, defaultModelOptions);
      // Every endpoint IP, and one no tunnel has.
      const ips = [...new Set(model.tunnels.flatMap((t) => t.endpoints.map((e) => e.address))), '10.255.255.254'];
      for (const ip of ips) {
        const view: NodeView = { role: 'terminate', listenAddress: ip };
        const scoped = tunnelsConcerning(model.tunnels, view);
        expect(scoped).toEqual(model.tunnels.filter((t) => concerns(view, t)));
        const resolved = (tunnels: readonly Tunnel[]) =>
          Object.entries(translateTerminate(tunnels, view).resources).map(([kind, list]) => [
            kind,
            list.map((r) => ({ ...r, object: objectOf(r) })),
          ]);
        expect(resolved(scoped)).toEqual(resolved(model.tunnels));
      }
    });
  }
});
