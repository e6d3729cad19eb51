// The input fuzzers with a fixed seed and a small count (make fuzz-inputs runs more): annotation
// parsers and the file source never crash and serve nothing the resource check refuses, and a sample
// of what is served passes a real Envoy's `--mode validate`, a check shown to fail on a known-bad value.
import { describe, expect, it } from 'vitest';
import { checkBatches } from '../fuzz/batches.js';
import { envoyValidate, staticBootstrap } from '../fuzz/envoy-check.js';
import { fuzzInputs, renderAll, serviceDocs } from '../fuzz/inputs.js';

const seed = 20261129;

describe('input fuzzing (fixed seed)', () => {
  it(
    'random annotation values and random or mutated YAML files: no crash, nothing served that the resource ' +
      'check refuses',
    () => {
      const counts = fuzzInputs({ seed, runs: 150 });
      console.log(
        `annotation cases ${counts.annotationCases} (listeners served ${counts.servicesServed}); file cases ` +
          `${counts.fileCases} (${counts.filesThatParsed} parsed)`,
      );
      expect(counts.annotationCases).toBe(150);
      expect(counts.fileCases).toBe(150);
      expect(counts.servicesServed).toBeGreaterThan(0);
    },
  );

  it('a sample of what is served passes envoy --mode validate (one run per batch and view)', async () => {
    const { verdicts, resources } = await checkBatches({ seed, batches: 2 });
    console.log(`envoy --mode validate: ${verdicts.length} runs over ${resources} resources`);
    expect(verdicts.filter((v) => !v.ok)).toEqual([]);
    expect(verdicts).toHaveLength(6);
  });

  it('the Envoy check is real: a known-bad value (a Duration one second past what Envoy holds) fails it', async () => {
    const service = {
      name: 'known',
      namespace: 'fz',
      annotations: { 'tunnel-shim.io/tunnel': 'h2', 'tunnel-shim.io/idle-timeout': '1s' },
      clusterIP: '10.96.0.1',
      ports: [80],
      endpoints: ['10.0.0.1'],
    };
    const bootstrap = staticBootstrap(renderAll(serviceDocs(service)).originate, 'known');
    const tcpProxy = bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
    expect(tcpProxy.idle_timeout).toBe('1s');
    tcpProxy.idle_timeout = '9223372035.999999999s';
    const good = JSON.parse(JSON.stringify(bootstrap));
    tcpProxy.idle_timeout = '9223372036s';
    const [ok, bad] = await envoyValidate([
      { name: 'good', bootstrap: good },
      { name: 'bad', bootstrap },
    ]);
    expect(ok!.ok, ok!.output).toBe(true);
    expect(bad!.ok).toBe(false);
    expect(bad!.output).toMatch(/Invalid duration: Duration out-of-range/);
  });
});
