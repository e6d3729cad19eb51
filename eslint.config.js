// Lint settles what the formatter does not: correctness rules, line length, and which layer may import which
// (src/README.md). Run by `make lint` and .ci/run.
import tseslint from 'typescript-eslint';

/** Imports a layer may not make: `from` its folder, none of `layers` (relative specifiers, as the code writes them). */
function layer(folder, forbidden, why) {
  return {
    files: [`src/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: forbidden, message: `${why} (src/README.md)` }] }],
    },
  };
}

/**
 * The edges (cli, admin and src/*.ts: shim, pipeline, render, metrics): no layer imports them. errors.ts and
 * clear.ts are leaves.
 */
const edges = ['../cli/*', '../admin/*', '../*.js', '!../errors.js', '!../clear.js', '../importer/*'];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'test-output/**',
      'protos/**',
      'bench/peers/**',
      '.venv/**',
      '.cache/**',
      'tmp/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  layer(
    'envoy',
    ['../sources/*', '../model/*', '../translate/*', '../cache/*', '../xds/*', ...edges],
    'envoy/ is the Envoy API every layer uses; it imports none of them',
  ),
  layer(
    'sources',
    ['../translate/*', '../cache/*', '../xds/*', ...edges],
    'sources deliver objects to the model; they know nothing later',
  ),
  layer(
    'model',
    ['../sources/*', '../translate/*', '../cache/*', '../xds/*', ...edges],
    'the model is pure and comes before translation, the cache and the server',
  ),
  layer(
    'translate',
    ['../sources/*', '../cache/*', '../xds/*', ...edges],
    'translation is pure and comes before the cache and the server',
  ),
  layer('cache', ['../sources/*', '../xds/*', ...edges], 'the cache comes before the server; the server reads it'),
  layer(
    'xds',
    ['../sources/*', '../model/*', '../translate/*', '../cache/*', '!../cache/watch.js', ...edges],
    'the server knows the cache only through cache/watch.ts, and no model or translation',
  ),
  {
    // Tests and benchmarks read Envoy's JSON (config dumps, stats) whose shape the test itself asserts.
    files: ['test/**', 'bench/**', 'scripts/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
