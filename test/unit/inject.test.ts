// Golden tests of `tunnel-shim inject`: test/unit/inject/NAME.yaml (first line `# role: R`, default
// originate) in, NAME.golden.yaml out, or NAME.golden.txt with the errors for a refusal. Regenerate
// with UPDATE_GOLDEN=1 and review the diff.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { injectManifests, type InjectOptions } from '../../src/cli/inject.js';
import {
  bootstrapConfigMap,
  defaultEnvoyImage,
  defaultXdsAddress,
  ENVOY_VERSION,
  injectRoles,
  type InjectRole,
} from '../../src/cli/inject-sidecar.js';
import { cliArgs, repo } from '../helpers/cli.js';

const dir = path.join(path.dirname(new URL(import.meta.url).pathname), 'inject');
const cases = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.includes('.golden.'));

function optionsOf(text: string): InjectOptions {
  const role = /^# role: (\w+)$/m.exec(text)?.[1] ?? 'originate';
  const roles: InjectRole[] = role === 'both' ? [...injectRoles] : [role as InjectRole];
  return { roles, image: defaultEnvoyImage };
}

function checkGolden(goldenPath: string, actual: string): void {
  if (process.env.UPDATE_GOLDEN || !fs.existsSync(goldenPath)) fs.writeFileSync(goldenPath, actual);
  expect(actual).toBe(fs.readFileSync(goldenPath, 'utf8'));
}

describe('tunnel-shim inject', () => {
  for (const file of cases) {
    it(file, () => {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      const options = optionsOf(text);
      const result = injectManifests(file, text, options);
      if (file.startsWith('refuse-')) {
        expect(result.output).toBe('');
        checkGolden(path.join(dir, file.replace(/\.yaml$/, '.golden.txt')), `${result.errors.join('\n')}\n`);
        return;
      }
      expect(result.errors).toEqual([]);
      expect(result.injected).toBeGreaterThan(0);
      checkGolden(path.join(dir, file.replace(/\.yaml$/, '.golden.yaml')), result.output);
      // Idempotent: injecting the output again changes no byte.
      expect(injectManifests(file, result.output, options)).toEqual({ output: result.output, errors: [], injected: 0 });
    });
  }

  it('keeps every document it does not inject byte for byte', () => {
    const text = fs.readFileSync(path.join(dir, 'deployment.yaml'), 'utf8');
    const service = text.slice(text.indexOf('---\n# Not a workload'));
    expect(injectManifests('deployment.yaml', text, optionsOf(text)).output.endsWith(service)).toBe(true);
  });

  it('changes roles in place: originate, then both, then originate again gives the first output', () => {
    const text = fs.readFileSync(path.join(dir, 'pod.yaml'), 'utf8');
    const inject = (input: string, roles: InjectRole[]) =>
      injectManifests('pod.yaml', input, { roles, image: defaultEnvoyImage });
    const originate = inject(text, ['originate']).output;
    const both = inject(originate, [...injectRoles]).output;
    expect(both).toContain('name: envoy-terminate');
    expect(inject(both, ['originate']).output).toBe(originate);
  });

  it('reads standard input with -f - and writes the same as with a file', () => {
    const file = path.join(dir, 'pod.yaml');
    const run = (args: string[], input?: string) =>
      execFileSync(process.execPath, cliArgs(['inject', '--role', 'terminate', ...args]), {
        cwd: repo,
        input,
        encoding: 'utf8',
      });
    expect(run(['-f', '-'], fs.readFileSync(file, 'utf8'))).toBe(run(['-f', file]));
  });

  it('prints the bootstrap ConfigMap; deploy/envoy-bootstrap.yaml is that ConfigMap for namespace default', () => {
    const stringify = (v: unknown) => YAML.stringify(v, { aliasDuplicateObjects: false, lineWidth: 0 });
    const configMap = (namespace: string) => stringify(bootstrapConfigMap(namespace, defaultXdsAddress, stringify));
    checkGolden(path.join(dir, 'configmap.golden.yaml'), configMap('demo'));
    const deployed = YAML.parse(fs.readFileSync(path.join(repo, 'deploy/envoy-bootstrap.yaml'), 'utf8'));
    expect(deployed).toEqual(YAML.parse(configMap('default')));
  });

  it('defaults to the Envoy version scripts/setup.sh installs for the tests', () => {
    expect(fs.readFileSync(path.join(repo, 'scripts/setup.sh'), 'utf8')).toContain(`ENVOY_VERSION=${ENVOY_VERSION}\n`);
    expect(defaultEnvoyImage).toBe(`envoyproxy/envoy:v${ENVOY_VERSION}`);
  });
});
