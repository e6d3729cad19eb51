// Values Envoy rejects (or accepts and then fails every connection with) are errors on the field that
// carries them, per kind of value: durations, authorities, header values, paths, names, UTF-8.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTunnelSettings } from '../../src/model/annotations.js';
import { buildModel } from '../../src/model/build.js';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import { defaultModelOptions } from '../../src/model/tunnel.js';
import { validateMessage } from '../../src/envoy/validate.js';
import { duration } from '../../src/translate/envoy-fields.js';
import { FileSource } from '../../src/sources/file.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import { serviceYaml } from '../helpers/objects.js';

const errorOf = (annotation: string, value: string) =>
  parseTunnelSettings({ 'tunnel-shim.io/tunnel': 'h2', [annotation]: value }).errors.find(
    (e) => e.annotation === annotation,
  )?.message;

describe('durations', () => {
  it('refuses what Envoy cannot hold (Envoy: "Duration out-of-range" from 9223372036s)', () => {
    expect(errorOf('tunnel-shim.io/idle-timeout', '99999999999h')).toMatch(
      /longer than Envoy accepts \(under 9223372036s, about 292 years\)/,
    );
    expect(errorOf('tunnel-shim.io/connection-keepalive-interval', '153722868m')).toMatch(/longer than Envoy accepts/);
    expect(errorOf('tunnel-shim.io/idle-timeout', '315576000000s')).toMatch(/longer than Envoy accepts/);
    expect(errorOf('tunnel-shim.io/max-downstream-connection-duration', '0.0000000001ms')).toMatch(
      /finer than a nanosecond/,
    );
  });

  it('keeps exact values at the edges, in milliseconds, and formats them back exactly', () => {
    const idle = (value: string) =>
      parseTunnelSettings({ 'tunnel-shim.io/tunnel': 'h2', 'tunnel-shim.io/idle-timeout': value }).settings
        ?.idleTimeoutMs;
    const served = (value: string) => duration(idle(value)!);
    expect(served('9223372035.999s')).toBe('9223372035.999s');
    expect(served('2562047h')).toBe('9223369200s');
    expect(served('0.000001ms')).toBe('0.000000001s');
    expect(served('1.000000001s')).toBe('1.000000001s');
    expect(idle('1.5m')).toBe(90_000);
    expect(errorOf('tunnel-shim.io/idle-timeout', '9223372036s')).toMatch(/longer than Envoy accepts/);
    // Nanoseconds on a duration of 292 years are more than a number of milliseconds holds: refused, not rounded.
    expect(errorOf('tunnel-shim.io/idle-timeout', '9223372035.999999999s')).toMatch(
      /too precise for its length; round it to whole milliseconds/,
    );
  });

  it('the resource check refuses an out-of-range Duration in any field, as Envoy does', () => {
    const tcpProxy = (idle: { seconds: number; nanos?: number }) =>
      validateMessage('envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', {
        stat_prefix: 'x',
        cluster: 'c',
        idle_timeout: idle,
      });
    expect(tcpProxy({ seconds: 9_223_372_035, nanos: 999_999_999 })).toEqual([]);
    expect(tcpProxy({ seconds: 9_223_372_036 })).toEqual([
      { path: 'idle_timeout', message: 'is out of range (under 9223372036s)' },
    ]);
    expect(tcpProxy({ seconds: 1, nanos: -1 })).toEqual([{ path: 'idle_timeout', message: 'must not be negative' }]);
  });
});

describe('authorities, header values and paths', () => {
  it('a hostname is an authority: no spaces, control characters or stray wildcards', () => {
    expect(errorOf('tunnel-shim.io/hostname', 'a b.example:443')).toBe(
      '"a b.example:443" is not an authority like host:port (" " is not allowed in a host name)',
    );
    expect(errorOf('tunnel-shim.io/hostname', 'a.example:99999')).toMatch(/"99999" is not a port/);
    expect(errorOf('tunnel-shim.io/hostname', '*.example:443')).toMatch(/wildcard belongs in tunnel-shim.io\/domains/);
    expect(errorOf('tunnel-shim.io/hostname', '%REQUESTED_SERVER_NAME% :443')).toMatch(
      /" " is not allowed in an authority/,
    );
    expect(errorOf('tunnel-shim.io/hostname', 'bücher.example:443')).toMatch(/"ü" is not allowed/);
    for (const ok of ['db.internal.example:5432', '[fd00::1]:443', '10.0.0.1:80', 'legacy.internal']) {
      expect(errorOf('tunnel-shim.io/hostname', ok), ok).toBeUndefined();
    }
  });

  it('domains are authorities with at most one leading wildcard', () => {
    expect(errorOf('tunnel-shim.io/domains', 'a]b:80')).toMatch(/"]" is not allowed in a host name/);
    expect(errorOf('tunnel-shim.io/domains', 'a.*.example:80')).toMatch(/a "\*" may only lead/);
    expect(errorOf('tunnel-shim.io/domains', '[zz::1]:80')).toMatch(/is not an IPv6 address/);
    expect(
      errorOf('tunnel-shim.io/domains', 'a.example.com:443, *.b.example.com:443, *:1234, [::1]:80'),
    ).toBeUndefined();
  });

  it('header values: no control characters, no whitespace at either end (RFC 9110, RFC 9113 8.2.1)', () => {
    expect(errorOf('tunnel-shim.io/headers-to-add', '{x-a: "bell\\u0007"}')).toBe(
      'x-a: contains the control character "\\u0007"',
    );
    expect(errorOf('tunnel-shim.io/headers-to-add', '{x-a: "\\u007f"}')).toMatch(/control character/);
    expect(errorOf('tunnel-shim.io/headers-to-add', '{x-a: " padded"}')).toMatch(/starts or ends with whitespace/);
    expect(
      errorOf(
        'tunnel-shim.io/headers-to-add',
        '{x-a: "tab\\tinside", x-b: "%DOWNSTREAM_REMOTE_ADDRESS%", x-c: "naïve"}',
      ),
    ).toBeUndefined();
  });

  it('an access log path names a file, not a directory (Envoy: "unable to open file \'/\': Is a directory")', () => {
    expect(errorOf('tunnel-shim.io/access-log', '/')).toMatch(/names a directory/);
    expect(errorOf('tunnel-shim.io/access-log', '/var/log/')).toMatch(/names a directory/);
    expect(errorOf('tunnel-shim.io/access-log', '/var/log/.')).toMatch(/names a directory/);
  });

  it('a post path has path characters only', () => {
    expect(
      parseTunnelSettings({ 'tunnel-shim.io/tunnel': 'h2-post', 'tunnel-shim.io/post-path': '/a b' }).errors[0]
        ?.message,
    ).toMatch(/not an absolute path/);
  });
});

describe('UTF-8', () => {
  it('a lone surrogate (from a "\\ud800" escape) is an error on any annotation', () => {
    const { errors } = parseYamlObjects(
      's.yaml',
      'kind: Service\nmetadata:\n  annotations:\n    tunnel-shim.io/access-log-format: "x\\ud800y"\n',
    ).objects.map((o) =>
      parseTunnelSettings({
        ...o.object.metadata!.annotations!,
        'tunnel-shim.io/tunnel': 'h2',
        'tunnel-shim.io/access-log': '/dev/stdout',
      }),
    )[0]!;
    expect(errors).toEqual([
      {
        annotation: 'tunnel-shim.io/access-log-format',
        message: 'is not valid UTF-8 (a lone surrogate \\ud800 at character 2)',
      },
    ]);
    expect(validateMessage('envoy.config.core.v3.HeaderValue', { key: 'x-a', value: 'x\ud800' })).toEqual([
      { path: 'value', message: 'is not valid UTF-8 (a lone surrogate)' },
    ]);
  });

  it('a file that is not UTF-8 is an error naming its line, and keeps its last good objects', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'utf8-'));
    const file = path.join(dir, 'svc.yaml');
    try {
      fs.writeFileSync(
        file,
        serviceYaml({ name: 'a', port: 80, annotations: { 'tunnel-shim.io/headers-to-add': '{x-a: ok}' } }),
      );
      const source = new FileSource(dir);
      expect(source.read().diagnostics).toEqual([]);
      // A literal U+FFFD before it is fine: only bytes that are not UTF-8 count.
      const bad = Buffer.concat([Buffer.from('# \uFFFD is fine\n'), fs.readFileSync(file)]);
      const line =
        bad
          .toString('latin1')
          .split('\n')
          .findIndex((l) => l.includes('x-a: ok')) + 1;
      fs.writeFileSync(file, Buffer.from(bad.toString('latin1').replace('x-a: ok', 'x-a: o\xffk'), 'latin1'));
      const state = source.read();
      expect(state.diagnostics.map(formatDiagnostic)).toEqual([
        `error: ${file}:${line}: is not valid UTF-8: ` +
          `byte 0xff at offset ${bad.indexOf('x-a: ok') + 6} does not belong to a UTF-8 character`,
        `warning: ${file}:${line}: serving the objects of the last good version of this file`,
      ]);
      expect(state.objects.map((o) => o.object.metadata?.annotations?.['tunnel-shim.io/headers-to-add'])).toEqual([
        '{x-a: ok}',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});

describe('names that become authorities', () => {
  it('a Service name or namespace that is not a DNS label is an error (the API server checks; files may not)', () => {
    const model = buildModel(
      parseYamlObjects('in.yaml', serviceYaml({ name: 'a b', namespace: 'Shop', port: 80 })).objects,
      defaultModelOptions,
    );
    expect(model.tunnels).toEqual([]);
    expect(model.diagnostics.map(formatDiagnostic)).toEqual([
      'error: in.yaml:4: Service Shop/a b: metadata.name: "a b" is not a DNS label ' +
        '(lowercase letters, digits and "-", at most 63), so it cannot be part of an authority',
    ]);
  });

  it('a TCPRoute backend name is one too', () => {
    const route = `apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: { name: r, namespace: default }
spec:
  parentRefs: [{ group: "", kind: Service, name: a, port: 80 }]
  rules: [{ backendRefs: [{ name: "b c", port: 80 }] }]
`;
    const model = buildModel(
      parseYamlObjects('in.yaml', `${serviceYaml({ name: 'a', port: 80 })}---\n${route}`).objects,
      defaultModelOptions,
    );
    expect(model.diagnostics.map(formatDiagnostic)).toEqual([
      'error: in.yaml:19: TCPRoute default/r: spec.rules[0].backendRefs[0].name: "b c" is not a DNS label ' +
        '(lowercase letters, digits and "-", at most 63), so it cannot be part of an authority',
    ]);
  });
});

describe('shapes the model cannot read (found by fuzzing)', () => {
  it('EndpointSlice ports as a mapping or Service labels as a list: errors naming the field; the rest serves', () => {
    const yaml = `${serviceYaml({ name: 'good', port: 80, endpoints: [{ ip: '10.0.0.1', port: 9000 }] })}---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: odd, namespace: default, labels: { kubernetes.io/service-name: good } }
ports: { name: tcp, port: 9000 }
---
apiVersion: v1
kind: Service
metadata: { name: odd, namespace: default, labels: [a, b], annotations: { tunnel-shim.io/tunnel: h2 } }
spec: { ports: [{ port: 81 }] }
`;
    const model = buildModel(parseYamlObjects('in.yaml', yaml).objects, defaultModelOptions);
    expect(model.tunnels.map((t) => t.key)).toEqual(['default/good:80']);
    expect(model.diagnostics.map(formatDiagnostic)).toEqual([
      'error: in.yaml:34: EndpointSlice default/odd: ports: must be a list',
      'error: in.yaml:38: Service default/odd: metadata.labels: must be a mapping of strings',
    ]);
  });
});

describe('annotation values a file leaves empty (found by fuzzing)', () => {
  it('an empty `tunnel-shim.io/tunnel:` (null in YAML) means h2; an empty setting is an error on it', () => {
    const [service] = parseYamlObjects(
      'in.yaml',
      'kind: Service\nmetadata:\n  annotations:\n    tunnel-shim.io/tunnel:\n    tunnel-shim.io/idle-timeout:\n',
    ).objects;
    const { settings, errors } = parseTunnelSettings(service!.object.metadata!.annotations!);
    expect(settings?.mode).toBe('h2');
    expect(errors).toEqual([
      { annotation: 'tunnel-shim.io/idle-timeout', message: '"" is not a duration like 500ms, 1s, 5m or 1h' },
    ]);
  });
});
