// Golden translation tests: objects in (test/unit/golden/NAME.yaml), every resource each view is
// served out (NAME.golden.yaml), reviewed like code. Regenerate with UPDATE_GOLDEN=1 and read the diff.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { TunnelPieces } from '../../src/cache/pieces.js';
import { diagnosticLines, render } from '../../src/render.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import type { NodeView, Role } from '../../src/translate/view.js';
import { buildModel } from '../../src/model/build.js';
import { defaultModelOptions, type Tunnel } from '../../src/model/tunnel.js';
import { objectOf } from '../../src/translate/resources.js';
import { concerns, tunnelsConcerning } from '../../src/translate/scope.js';
import { translateTerminate } from '../../src/translate/terminate.js';

const dir = path.join(path.dirname(new URL(import.meta.url).pathname), 'golden');
const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.endsWith('.golden.yaml'));

function viewsOf(text: string): NodeView[] {
  const line = /^# views: (.+)$/m.exec(text)?.[1] ?? 'originate, terminate';
  return line.split(',').map((v) => {
    const [role, address] = v.trim().split('@');
    return { role: role as Role, ...(address ? { listenAddress: address } : {}) };
  });
}

describe('golden translation', () => {
  for (const file of cases) {
    it(file, () => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      const parsed = parseYamlObjects(file, text);
      const out: Record<string, unknown> = {};
      for (const view of viewsOf(text)) {
        const name = view.listenAddress ? `${view.role}@${view.listenAddress}` : view.role;
        const { resources, diagnostics } = render({ objects: parsed.objects, diagnostics: parsed.diagnostics }, view);
        out[name] = { diagnostics: diagnosticLines(diagnostics), ...resources };
      }
      const actual = YAML.stringify(out, { aliasDuplicateObjects: false, lineWidth: 0 });
      const goldenPath = path.join(dir, file.replace(/\.yaml$/, '.golden.yaml'));
      if (process.env.UPDATE_GOLDEN || !fs.existsSync(goldenPath)) fs.writeFileSync(goldenPath, actual);
      expect(actual).toBe(fs.readFileSync(goldenPath, 'utf8'));
    });

    // Bound terminators are translated from only the tunnels that concern them (translate/scope.ts):
    // that must give exactly what translating from every tunnel gives, for each endpoint IP.
    it(`${file}: a bound terminator's tunnels are all it needs`, () => {
      const model = buildModel(
        parseYamlObjects(file, fs.readFileSync(path.join(dir, file), 'utf8')).objects,
        defaultModelOptions,
      );
      // Every endpoint IP, and one no tunnel has.
      const ips = [...new Set(model.tunnels.flatMap((t) => t.endpoints.map((e) => e.address))), '10.255.255.254'];
      for (const ip of ips) {
        const view: NodeView = { role: 'terminate', listenAddress: ip };
        const scoped = tunnelsConcerning(model.tunnels, view);
        expect(scoped).toEqual(model.tunnels.filter((t) => concerns(view, t)));
        // One memo for both: equal parts are then the same objects, and keys name them alike.
        const memo = new TunnelPieces();
        const resolved = (tunnels: readonly Tunnel[]) =>
          Object.entries(translateTerminate(tunnels, view, memo).resources).map(([kind, list]) => [
            kind,
            list.map((r) => ({ ...r, object: objectOf(r) })),
          ]);
        expect(resolved(scoped)).toEqual(resolved(model.tunnels));
      }
    });
  }
});
