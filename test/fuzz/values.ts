// Fuzzed annotation values: every kind of value (durations, authorities, format strings, maps, paths,
// enums, numbers, any text) reaches every row of the annotation table, and each row also gets its own
// valid examples and near misses of them (one hostile character inserted or replaced).
import fc from 'fast-check';
import {
  annotationTable,
  fallbackPolicies,
  lbPolicies,
  placements,
  tunnelModes,
} from '../../src/model/annotation-table.js';

const commands = [
  'REQUESTED_SERVER_NAME',
  'DOWNSTREAM_REMOTE_ADDRESS',
  'UPSTREAM_HOST',
  'REQ(:AUTHORITY)',
  'START_TIME(%Y)',
  'NOPE',
  'REQ',
  'CONNECTION_ID:5',
];
const hostChars = [..."abcz09.-_~:[]*%!$&'()+,;= \t\u0000\u0007\u007f\u00fc\u3042/\\@#?"];

const digits = fc.stringMatching(/^\d{1,25}$/);
const durationish = fc
  .tuple(digits, fc.option(fc.stringMatching(/^\d{1,12}$/)), fc.constantFrom('ms', 's', 'm', 'h', '', 'us', 'd'))
  .map(([n, f, u]) => `${n}${f === null ? '' : `.${f}`}${u}`);
const hostish = fc
  .array(fc.constantFrom(...hostChars, 'a', 'b', '.', 'example', 'com'), { maxLength: 12 })
  .map((p) => p.join(''));
const authorityish = fc
  .tuple(
    fc.constantFrom('', '*', '*.', '['),
    hostish,
    fc.option(fc.oneof(fc.integer({ min: -1, max: 70000 }).map(String), digits)),
  )
  .map(([pre, host, port]) => `${pre}${host}${port === null ? '' : `:${port}`}`);
const formatish = fc
  .array(
    fc.oneof(
      hostish,
      fc.constantFrom(...commands).map((c) => `%${c}%`),
      fc.constant('%'),
    ),
    { maxLength: 4 },
  )
  .map((p) => p.join(''));
export const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ maxLength: 30 }),
);
const scalarish = fc.oneof(
  anyText,
  formatish,
  hostish,
  fc.integer().map(String),
  fc.constantFrom('true', 'false', 'null', '~', '[]', '{}'),
);
const mapish = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom('x-tenant', 'env', 'app', 'Bad Header', ':path', 'host', 'a/b', '-x'), anyText),
      scalarish,
    ),
    { maxLength: 3 },
  )
  .map((pairs) => `{${pairs.map(([k, v]) => `${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(', ')}}`);
const pathish = fc
  .array(fc.constantFrom('/', 'a', 'tunnel', '%', ' ', '?', '..', '\u0000', '~'), { maxLength: 6 })
  .map((p) => p.join(''));
const enumish = fc.constantFrom(
  ...tunnelModes,
  ...placements,
  ...lbPolicies,
  ...fallbackPolicies,
  'source-ip',
  'cookie',
  'H2',
  ' h2 ',
);
const numberish = fc
  .oneof(fc.integer({ min: -5, max: 70_000 }), fc.constantFrom(0, 1, 100, 101, 2147483647, 2147483648))
  .map(String);

/** A value for any annotation: each kind of value (valid and not) reaches every row. */
export const annotationValue: fc.Arbitrary<string> = fc.oneof(
  durationish,
  authorityish,
  formatish,
  mapish,
  pathish,
  enumish,
  numberish,
  anyText,
  fc.constantFrom(
    '/dev/stdout',
    '/var/log/t.log',
    'relative.log',
    '/a/../b',
    'a.example.com:443, *.b.example.com:443',
    '*',
    '{env: hema}',
    '1s',
    '500ms',
    '15009',
  ),
);

/** Values some row accepts; each row's own examples are those it parses (so new rows get theirs too). */
const examplePool = [
  '1s',
  '500ms',
  '5m',
  '1h',
  '0s',
  '1.5s',
  '9223372035.999999999s',
  '9223372035.999s',
  '2562047h',
  '9223372036s',
  '0.000001ms',
  '1',
  '3',
  '100',
  '2147483647',
  '15009',
  '65535',
  'true',
  'false',
  ...tunnelModes,
  ...placements,
  ...lbPolicies,
  ...fallbackPolicies,
  'source-ip',
  '/',
  '/tunnels/db',
  'db.internal.example:5432',
  '[fd00::1]:443',
  '%REQUESTED_SERVER_NAME%:443',
  'a.example.com:443, *.b.example.com:443',
  '*:1234',
  '{env: hema}',
  '{x-tenant: blue, x-client: "%DOWNSTREAM_REMOTE_ADDRESS%"}',
  '/dev/stdout',
  '/var/log/t.log',
  '%CONNECTION_ID% %UPSTREAM_HOST% %REQ(:AUTHORITY)%',
];
const hostile = fc.constantFrom(
  ' ',
  '\t',
  '\u0000',
  '\u0007',
  '\n',
  '\u007f',
  '\ud800',
  '\udc00',
  '*',
  '%',
  ':',
  '[',
  ']',
  ',',
  '{',
  '"',
  '\u00fc',
  '9',
  '.',
  '0',
);
/** A valid value with one character inserted or replaced: the near misses a parser must catch. */
const nearMiss = (examples: string[]) =>
  fc
    .tuple(fc.constantFrom(...examples), fc.nat(), hostile, fc.boolean())
    .map(
      ([v, at, c, replace]) => v.slice(0, at % (v.length + 1)) + c + v.slice((at % (v.length + 1)) + (replace ? 1 : 0)),
    );

/** `valid`: how often (of 10) a row gets one of its own examples; the rest are near misses and noise. */
function rowValue(key: string, valid: number): fc.Arbitrary<string> {
  const row = annotationTable[key];
  const examples = row
    ? examplePool.filter((v) => !('error' in row.parse(v)))
    : key === 'tunnel-shim.io/tunnel'
      ? [...tunnelModes, '']
      : [];
  if (examples.length === 0) return annotationValue;
  const rest = 10 - valid;
  return fc.oneof(
    { weight: valid, arbitrary: fc.constantFrom(...examples) },
    { weight: Math.ceil(rest / 2), arbitrary: nearMiss(examples) },
    { weight: Math.floor(rest / 2), arbitrary: annotationValue },
  );
}

const keys = ['tunnel-shim.io/tunnel', ...Object.keys(annotationTable), 'tunnel-shim.io/unknown'];
export const annotationsOf = (valid: number) =>
  fc
    .array(
      fc.constantFrom(...keys).chain((key) => rowValue(key, valid).map((value) => [key, value] as const)),
      { maxLength: 4 },
    )
    .map((entries) => Object.fromEntries(entries));
