import { describe, expect, it } from 'vitest';
import { parseAccessLogDir } from '../../src/model/annotations.js';
import { buildModel } from '../../src/model/build.js';
import { formatDiagnostic } from '../../src/model/diagnostics.js';
import { parseDurationMs } from '../../src/model/durations.js';
import { parseYamlObjects } from '../../src/sources/yaml.js';
import { serviceYaml } from '../helpers/objects.js';

const options = { clusterDomain: 'cluster.local' };
const model = (yaml: string, previous?: ReturnType<typeof buildModel>) =>
  buildModel(parseYamlObjects('in.yaml', yaml).objects, options, previous);

describe('model', () => {
  it('turns an annotated Service and its ready endpoints into a tunnel', () => {
    const m = model(
      serviceYaml({
        name: 'a',
        namespace: 'n',
        port: 80,
        endpoints: [
          { ip: '10.0.0.2', port: 8080 },
          { ip: '10.0.0.1', port: 8080 },
        ],
      }),
    );
    expect(m.diagnostics).toEqual([]);
    expect(m.tunnels).toMatchObject([
      {
        key: 'n/a:80',
        authority: 'a.n.svc.cluster.local:80',
        settings: { mode: 'h2', tunnelPort: 15008, placement: 'sidecar' },
      },
    ]);
    expect(m.tunnels[0]!.endpoints).toEqual([
      { address: '10.0.0.1', port: 8080 },
      { address: '10.0.0.2', port: 8080 },
    ]);
  });

  it('hands back an unchanged tunnel as the same object, whether its objects are the same or parsed anew', () => {
    const yaml = (ip: string) =>
      [
        serviceYaml({ name: 'a', namespace: 'n', port: 80, endpoints: [{ ip: '10.0.0.1', port: 1 }] }),
        serviceYaml({
          name: 'b',
          namespace: 'n',
          port: 81,
          annotations: { 'tunnel-shim.io/idle-timeout': '5s' },
          endpoints: [{ ip, port: 1 }],
        }),
      ].join('---\n');
    const objects = parseYamlObjects('in.yaml', yaml('10.0.0.2')).objects;
    const first = buildModel(objects, options);
    // The same objects (a watch source): every tunnel kept.
    const again = buildModel([...objects], options, first);
    expect(again.tunnels[0]).toBe(first.tunnels[0]);
    expect(again.tunnels[1]).toBe(first.tunnels[1]);
    // Parsed anew (the file source), one endpoint moved: only that Service's tunnel is new.
    const moved = model(yaml('10.0.0.3'), again);
    expect(moved.tunnels[0]).toBe(first.tunnels[0]);
    expect(moved.tunnels[1]).not.toBe(first.tunnels[1]);
    expect(moved.tunnels[1]!.endpoints).toEqual([{ address: '10.0.0.3', port: 1 }]);
    expect(moved.tunnels[1]!.settings.idleTimeoutMs).toBe(5000);
  });

  it('keeps serving the last good settings of a Service whose annotation breaks, with fresh endpoints', () => {
    const good = model(
      serviceYaml({
        name: 'a',
        namespace: 'n',
        port: 80,
        annotations: { 'tunnel-shim.io/tunnel-port': '15100' },
        endpoints: [{ ip: '10.0.0.1', port: 1 }],
      }),
    );
    const broken = model(
      serviceYaml({
        name: 'a',
        namespace: 'n',
        port: 80,
        annotations: { 'tunnel-shim.io/tunnel-port': 'abc' },
        endpoints: [{ ip: '10.0.0.7', port: 1 }],
      }),
      good,
    );
    expect(broken.tunnels).toHaveLength(1);
    expect(broken.tunnels[0]!.settings.tunnelPort).toBe(15100);
    expect(broken.tunnels[0]!.endpoints).toEqual([{ address: '10.0.0.7', port: 1 }]);
    expect(broken.diagnostics.map(formatDiagnostic)).toEqual([
      'error: in.yaml:8: Service n/a: metadata.annotations["tunnel-shim.io/tunnel-port"]: ' +
        '"abc" is not a port (1-65535)',
      'warning: in.yaml:1: Service n/a: serving the last good configuration of this Service until the errors are fixed',
    ]);
  });

  it('gives a contested clusterIP:port to its previous owner', () => {
    const a = serviceYaml({ name: 'z-first', namespace: 'n', clusterIP: '10.96.0.1', port: 80 });
    const b = serviceYaml({ name: 'a-second', namespace: 'n', clusterIP: '10.96.0.1', port: 80 });
    const before = model(a);
    const after = model(`${a}---\n${b}`, before);
    expect(after.tunnels.map((t) => t.service.name)).toEqual(['z-first']);
    expect(after.diagnostics[0]!.message).toBe('10.96.0.1:80 is already used by Service n/z-first');
  });

  it("serve --access-log-dir admits per-Service logs under those folders only (and Envoy's stdout/stderr)", () => {
    let port = 80;
    const logAt = (name: string, file: string) =>
      serviceYaml({ name, namespace: 'n', port: port++, annotations: { 'tunnel-shim.io/access-log': file } });
    const yaml = [
      logAt('inside', '/var/log/tunnels/a.log'),
      logAt('nested', '/var/log/tunnels//db/./b.log'),
      logAt('stdout', '/dev/stdout'),
      logAt('sibling', '/var/log/tunnels-evil/c.log'),
      logAt('folder', '/var/log/tunnels'),
      logAt('device', '/dev/sda'),
    ].join('---\n');
    const m = buildModel(parseYamlObjects('in.yaml', yaml).objects, {
      ...options,
      accessLogDirs: ['/var/log/tunnels', '/srv/logs'],
    });
    expect(m.tunnels.map((t) => t.service.name)).toEqual(['inside', 'nested', 'stdout']);
    const refused = (line: number, name: string, file: string) =>
      `error: in.yaml:${line}: Service n/${name}: metadata.annotations["tunnel-shim.io/access-log"]: ` +
      `"${file}" is not under a directory this shim allows access logs in ` +
      '(--access-log-dir /var/log/tunnels, /srv/logs); /dev/stdout and /dev/stderr are always allowed';
    expect(m.diagnostics.map(formatDiagnostic)).toEqual([
      refused(78, 'device', '/dev/sda'),
      refused(64, 'folder', '/var/log/tunnels'),
      refused(50, 'sibling', '/var/log/tunnels-evil/c.log'),
    ]);
    // Without the flag every absolute path is admitted, as before.
    expect(model(yaml).tunnels).toHaveLength(6);
    expect(parseAccessLogDir('/var/log/tunnels/')).toEqual({ dir: '/var/log/tunnels' });
    expect(parseAccessLogDir('/')).toEqual({ dir: '/' });
    expect(parseAccessLogDir('logs')).toHaveProperty('error');
    expect(parseAccessLogDir('/var/../etc')).toHaveProperty('error');
  });

  it('reads Envoy-style durations into milliseconds', () => {
    expect(parseDurationMs('1s')).toEqual({ ms: 1000 });
    expect(parseDurationMs('250ms')).toEqual({ ms: 250 });
    expect(parseDurationMs('5m')).toEqual({ ms: 300_000 });
    expect(parseDurationMs('1h')).toEqual({ ms: 3_600_000 });
    expect(parseDurationMs('5')).toHaveProperty('error');
    expect(parseDurationMs('1 day')).toHaveProperty('error');
  });
});
