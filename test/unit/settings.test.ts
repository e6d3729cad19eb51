// The annotation table's parsers and checks, the relay node view and bootstrap: the parts of the
// settings that the golden files show only through their output.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { annotationTable } from '../../src/model/annotation-table.js';
import { buildBootstrap, checkBootstrap } from '../../src/cli/bootstrap.js';
import { parseTunnelSettings } from '../../src/model/annotations.js';
import { checkFormat, checkHeaderName } from '../../src/model/format.js';
import { NodeError, parseNode } from '../../src/xds/node.js';

const parse = (extra: Record<string, string>) => parseTunnelSettings({ 'tunnel-shim.io/tunnel': 'h2', ...extra });

describe('format strings', () => {
  it('accepts what Envoy accepts', () => {
    for (const ok of [
      '%REQUESTED_SERVER_NAME%:443',
      'static.example.com:80',
      '%REQ(:AUTHORITY)% %UPSTREAM_HOST%',
      '%START_TIME%',
      '%START_TIME(%Y)%',
      '%FILTER_STATE(a.b:PLAIN)%',
      '%REQ(x-a):10%',
    ]) {
      expect(checkFormat(ok), ok).toBeUndefined();
    }
  });

  it('rejects unknown commands, stray percent signs, missing arguments and line breaks', () => {
    expect(checkFormat('%NOPE%')).toBe('unknown format command %NOPE%');
    expect(checkFormat('100%')).toMatch(/does not start a format command/);
    expect(checkFormat('%REQ%')).toMatch(/needs an argument/);
    expect(checkFormat('%UPSTREAM_HOST(x)%')).toMatch(/takes no argument/);
    expect(checkFormat('a\nb')).toMatch(/line break/);
  });

  it('allows only lowercase header names Envoy lets a tunnel add', () => {
    expect(checkHeaderName('x-tenant')).toBeUndefined();
    expect(checkHeaderName(':path')).toMatch(/pseudo-header/);
    expect(checkHeaderName('host')).toMatch(/managed by Envoy/);
    expect(checkHeaderName('X-Upper')).toMatch(/not a lowercase/);
  });
});

describe('annotations', () => {
  it('keeps durations in milliseconds and defaults what depends on other settings', () => {
    const { settings, errors } = parse({
      'tunnel-shim.io/idle-timeout': '500ms',
      'tunnel-shim.io/max-downstream-connection-duration': '5m',
      'tunnel-shim.io/hash-policy': 'source-ip',
      'tunnel-shim.io/metadata-match': '{env: hema}',
      'tunnel-shim.io/default-subset': '{env: taobao}',
    });
    expect(errors).toEqual([]);
    expect(settings).toMatchObject({
      idleTimeoutMs: 500,
      maxDownstreamConnectionDurationMs: 300_000,
      lbPolicy: 'RING_HASH',
      fallbackPolicy: 'DEFAULT_SUBSET',
    });
  });

  it('h2-post gets post path / by default; a post path without h2-post is an error', () => {
    expect(parseTunnelSettings({ 'tunnel-shim.io/tunnel': 'h2-post' }).settings?.postPath).toBe('/');
    expect(parse({ 'tunnel-shim.io/post-path': '/x' }).errors[0]?.message).toMatch(
      /needs tunnel-shim.io\/tunnel: h2-post/,
    );
  });

  it('a hostname decided per connection needs an explicit allowlist of authorities', () => {
    expect(parse({ 'tunnel-shim.io/hostname': '%REQUESTED_SERVER_NAME%:443' }).errors[0]?.message).toMatch(
      /tunnel-shim.io\/domains/,
    );
    expect(
      parse({ 'tunnel-shim.io/hostname': '%REQUESTED_SERVER_NAME%:443', 'tunnel-shim.io/domains': 'a.example.com:443' })
        .errors,
    ).toEqual([]);
    expect(parse({ 'tunnel-shim.io/domains': '*' }).errors[0]?.message).toMatch(/open proxy/);
  });

  it('the README reference table has a row for every annotation, and no row for one that does not exist', () => {
    const readme = fs.readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `(tunnel-shim\.io\/[a-z-]+)` \|/gm)].map((m) => m[1]);
    expect(rows.sort()).toEqual(['tunnel-shim.io/tunnel', ...Object.keys(annotationTable)].sort());
  });

  it('keepalive durations are in milliseconds; HTTP/1.1 tunnels have no PINGs to tune', () => {
    expect(
      parse({
        'tunnel-shim.io/connection-keepalive-interval': '1s',
        'tunnel-shim.io/connection-keepalive-timeout': '250ms',
      }).settings,
    ).toMatchObject({ connectionKeepaliveIntervalMs: 1000, connectionKeepaliveTimeoutMs: 250 });
    expect(
      parseTunnelSettings({ 'tunnel-shim.io/tunnel': 'h1', 'tunnel-shim.io/connection-keepalive-interval': '1s' })
        .errors[0]?.message,
    ).toMatch(/no HTTP\/2 PING/);
  });

  it("flow-control windows: in Envoy's bounds, a stream window at most half the connection window, not for h1", () => {
    const w = (stream?: string, connection?: string, mode = 'h2') =>
      parseTunnelSettings({
        'tunnel-shim.io/tunnel': mode,
        ...(stream ? { 'tunnel-shim.io/initial-stream-window-size': stream } : {}),
        ...(connection ? { 'tunnel-shim.io/initial-connection-window-size': connection } : {}),
      });
    expect(w('131072', '1048576')).toMatchObject({
      errors: [],
      settings: { initialStreamWindowSize: 131072, initialConnectionWindowSize: 1048576 },
    });
    expect(w('65534').errors).toEqual([
      {
        annotation: 'tunnel-shim.io/initial-stream-window-size',
        message: '"65534" is not a whole number from 65535 to 2147483647',
      },
    ]);
    // Against the default connection window (4 MiB) too.
    expect(w('4194304').errors).toEqual([
      {
        annotation: 'tunnel-shim.io/initial-stream-window-size',
        message:
          'the stream window (4194304) must be at most half the connection window (4194304), ' +
          'or a few stuck tunnels take the whole pooled connection',
      },
    ]);
    expect(w(undefined, '262144').errors[0]?.annotation).toBe('tunnel-shim.io/initial-connection-window-size');
    expect(w('131072', undefined, 'h1').errors[0]?.message).toMatch(/no HTTP\/2 flow control/);
    const buffer = parse({ 'tunnel-shim.io/per-connection-buffer-limit-bytes': '512' });
    expect(buffer.errors[0]?.message).toBe('"512" is not a whole number from 1024 to 2147483647');
  });

  it('subset annotations alone on an untunneled Service are not stray (TCPRoute backends use them)', () => {
    expect(parseTunnelSettings({ 'tunnel-shim.io/metadata-match': '{env: a}' }).errors).toEqual([]);
    expect(parseTunnelSettings({ 'tunnel-shim.io/idle-timeout': '1s' }).errors[0]?.message).toMatch(/has no effect/);
  });
});

describe('relay node', () => {
  it('reads the relay HTTP backend from node metadata and rejects a malformed one', () => {
    const node = (backend: string) => ({
      id: 'r',
      metadata: {
        fields: {
          'tunnel-shim.io/role': { stringValue: 'relay' },
          'tunnel-shim.io/relay-http-backend': { stringValue: backend },
        },
      },
    });
    expect(parseNode(node('127.0.0.1:8080')).view).toEqual({ role: 'relay', relayHttpBackend: '127.0.0.1:8080' });
    expect(() => parseNode(node('localhost:80'))).toThrow(NodeError);
  });

  it('writes a valid relay bootstrap, and refuses a relay backend for other roles', () => {
    const b = buildBootstrap({
      role: 'relay',
      nodeId: 'r',
      xdsAddress: '127.0.0.1:18000',
      adminAddress: '127.0.0.1:9901',
      relayHttpBackend: '127.0.0.1:8080',
    });
    expect(checkBootstrap(b)).toEqual([]);
    expect(() =>
      buildBootstrap({
        role: 'terminate',
        nodeId: 't',
        xdsAddress: '127.0.0.1:18000',
        adminAddress: '127.0.0.1:9901',
        relayHttpBackend: '127.0.0.1:8080',
      }),
    ).toThrow(/--role relay/);
  });
});
