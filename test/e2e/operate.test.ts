// Operating the shim with two real Envoys connected: CSDS (a gRPC client and grpcurl), the status
// command, and render's dry run compared with what each Envoy actually holds (its /config_dump). All of
// it runs twice: with Envoys speaking state-of-the-world ADS, and with Envoys bootstrapped with --delta.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromEnvoyJson } from '../../src/envoy/json.js';
import { toObjectOptions } from '../../src/envoy/encode.js';
import { lookupType } from '../../src/envoy/protos.js';
import { originateMeta } from '../helpers/ads-client.js';
import { runCli } from '../helpers/cli.js';
import { CsdsClient, byResource, type ClientConfig } from '../helpers/csds-client.js';
import { startEnvoy, type EnvoyProcess } from '../helpers/envoy.js';
import { csdsScript } from '../helpers/grpcurl.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { XdsClient, xdsModes } from '../helpers/xds-client.js';

/**
 * An Envoy-JSON resource, normalised through the proto of its type: equal protos give equal objects.
 * Every field is listed with its default, because proto3 cannot tell a default scalar from an absent
 * one (the shim writes `lb_policy: ROUND_ROBIN`; Envoy's dump omits it as the default).
 */
function normalise(typeName: string, object: unknown): unknown {
  const type = lookupType(typeName);
  const message = type.fromObject(fromEnvoyJson(type, object));
  return type.toObject(type.decode(type.encode(message).finish()), { ...toObjectOptions, defaults: true });
}

const byName = (list: unknown[], nameOf: (x: any) => string, typeName: string) =>
  Object.fromEntries(list.map((x) => [nameOf(x), normalise(typeName, x)]));

/**
 * Envoy dumps endpoints rebuilt from its host sets, not as received: it writes out the defaults it
 * applied (empty locality, locality weight 0, health_check_config {}, HEALTHY, host weight 1,
 * overprovisioning 140). Those exact values are removed; anything else stays and must match.
 */
function withoutEdsDumpDefaults(cla: any): any {
  const { policy, ...rest } = cla;
  const keptPolicy =
    policy && !(Object.keys(policy).length === 1 && policy.overprovisioning_factor === 140) ? { policy } : {};
  return {
    ...rest,
    ...keptPolicy,
    endpoints: (cla.endpoints ?? []).map((locality: any) => {
      const { locality: where, load_balancing_weight: weight, ...l } = locality;
      return {
        ...l,
        ...(where && Object.keys(where).length > 0 ? { locality: where } : {}),
        ...(weight !== undefined && weight !== 0 ? { load_balancing_weight: weight } : {}),
        lb_endpoints: (l.lb_endpoints ?? []).map((host: any) => {
          const { health_status: health, load_balancing_weight: hostWeight, endpoint, ...h } = host;
          const { health_check_config: hc, ...e } = endpoint ?? {};
          return {
            ...h,
            endpoint: { ...e, ...(hc && Object.keys(hc).length > 0 ? { health_check_config: hc } : {}) },
            ...(health !== undefined && health !== 'HEALTHY' ? { health_status: health } : {}),
            ...(hostWeight !== undefined && hostWeight !== 1 ? { load_balancing_weight: hostWeight } : {}),
          };
        }),
      };
    }),
  };
}

async function envoyHolds(envoy: EnvoyProcess) {
  const dump = JSON.parse(await envoy.get('/config_dump?include_eds')) as { configs: any[] };
  const of = (type: string) => dump.configs.find((c) => c['@type'].endsWith(`.${type}`)) ?? {};
  const strip = (o: any) => {
    const { '@type': _t, ...rest } = o;
    return rest;
  };
  return {
    clusters: byName(
      (of('ClustersConfigDump').dynamic_active_clusters ?? []).map((c: any) => strip(c.cluster)),
      (c) => c.name,
      'envoy.config.cluster.v3.Cluster',
    ),
    listeners: byName(
      (of('ListenersConfigDump').dynamic_listeners ?? []).map((l: any) => strip(l.active_state.listener)),
      (l) => l.name,
      'envoy.config.listener.v3.Listener',
    ),
    routes: byName(
      (of('RoutesConfigDump').dynamic_route_configs ?? []).map((r: any) => strip(r.route_config)),
      (r) => r.name,
      'envoy.config.route.v3.RouteConfiguration',
    ),
    endpoints: byName(
      (of('EndpointsConfigDump').dynamic_endpoint_configs ?? []).map((e: any) =>
        withoutEdsDumpDefaults(strip(e.endpoint_config)),
      ),
      (e) => e.cluster_name,
      'envoy.config.endpoint.v3.ClusterLoadAssignment',
    ),
  };
}

describe.each(xdsModes)('operating the shim with %s Envoys', (mode) => {
  const delta = mode === 'delta';
  /** How `status` names the protocol. */
  const protocol = delta ? 'delta' : 'SotW';

  let shim: TestShim;
  let originator: EnvoyProcess;
  let terminator: EnvoyProcess;
  let backend: EchoServer;
  let csds: CsdsClient;
  let tunnelPort: number;
  let echoPort: number;

  const annotations = () => ({ 'tunnel-shim.io/tunnel-port': String(tunnelPort) });
  const adminAddress = () => shim.adminUrl.replace('http://', '');

  function allSynced(configs: ClientConfig[], ids: string[]): boolean {
    return ids.every((id) => {
      const c = configs.find((x) => x.node.id === id);
      return (
        c &&
        c.generic_xds_configs.length > 0 &&
        c.generic_xds_configs.every((g) => g.config_status === 'SYNCED' && g.client_status === 'ACKED')
      );
    });
  }

  beforeAll(async () => {
    tunnelPort = await freePort();
    echoPort = await freePort();
    backend = await startEcho('127.0.0.2', 0);
    shim = await startShim({
      'echo.yaml': serviceYaml({
        name: 'echo',
        namespace: 'ops',
        clusterIP: '10.96.9.1',
        port: echoPort,
        annotations: annotations(),
        endpoints: [{ ip: '127.0.0.2', port: backend.port }],
      }),
      'gw.yaml': serviceYaml({
        name: 'gw',
        namespace: 'ops',
        clusterIP: '10.96.9.2',
        port: await freePort(),
        annotations: { ...annotations(), 'tunnel-shim.io/placement': 'gateway', 'tunnel-shim.io/tunnel': 'h1' },
        endpoints: [{ ip: '127.0.0.2', port: backend.port }],
      }),
    });
    [terminator, originator] = await Promise.all([
      startEnvoy({ role: 'terminate', nodeId: 'ops-terminator', xdsAddress: shim.xdsAddress, delta }),
      startEnvoy({
        role: 'originate',
        nodeId: 'ops-originator',
        xdsAddress: shim.xdsAddress,
        listenAddress: '127.0.0.1',
        delta,
      }),
    ]);
    csds = new CsdsClient(shim.xdsAddress);
    await waitFor(
      'both Envoys SYNCED in CSDS',
      async () => allSynced(await csds.fetch(), ['ops-originator', 'ops-terminator']),
      30_000,
      100,
    );
    await waitFor('the tunnel to work', () => roundTrip(echoPort).then(() => true), 20_000, 200);
  });

  afterAll(async () => {
    csds?.close();
    await Promise.all([originator?.stop(), terminator?.stop()]);
    await shim?.stop();
    await backend?.close();
  });

  describe('CSDS with real Envoys', () => {
    it('reads both Envoys SYNCED per resource, and SYNCED again on the new version after a change', async () => {
      const before = await csds.fetch();
      const listenerBefore = byResource(before.find((c) => c.node.id === 'ops-originator')!).get(
        `Listener|originate/ops/echo/${echoPort}`,
      )!;
      expect(listenerBefore.resource?.address.socket_address.port_value).toBe(echoPort);
      const addedPort = await freePort();
      shim.write(
        'added.yaml',
        serviceYaml({
          name: 'added',
          namespace: 'ops',
          clusterIP: '10.96.9.3',
          port: addedPort,
          annotations: annotations(),
          endpoints: [{ ip: '127.0.0.2', port: backend.port }],
        }),
      );
      const after = await waitFor(
        'both Envoys SYNCED on the change',
        async () => {
          const configs = await csds.fetch();
          const originate = configs.find((c) => c.node.id === 'ops-originator');
          const terminate = configs.find((c) => c.node.id === 'ops-terminator');
          const added = originate && byResource(originate).get(`Listener|originate/ops/added/${addedPort}`);
          const route = terminate && byResource(terminate).get(`RouteConfiguration|terminate/${tunnelPort}/127.0.0.2`);
          const hasAdded = route?.resource?.virtual_hosts?.some((h: any) =>
            h.domains.includes(`added.ops.svc.cluster.local:${addedPort}`),
          );
          return added && hasAdded && allSynced(configs, ['ops-originator', 'ops-terminator']) ? configs : undefined;
        },
        20_000,
        100,
      );
      const originate = byResource(after.find((c) => c.node.id === 'ops-originator')!);
      expect(originate.get(`Listener|originate/ops/added/${addedPort}`)!.version_info).not.toBe(
        listenerBefore.version_info,
      );
      await waitFor('the new tunnel to work', () => roundTrip(addedPort).then(() => true), 15_000, 100);
      // Envoy's own view agrees: the version it reports for LDS is the one CSDS says it ACKed.
      const dump = JSON.parse(await originator.get('/config_dump?resource=dynamic_listeners'));
      const inEnvoy = dump.configs.find((c: any) => c.name === `originate/ops/added/${addedPort}`);
      expect(inEnvoy.active_state.version_info).toBe(
        originate.get(`Listener|originate/ops/added/${addedPort}`)!.version_info,
      );
    });

    it('measures convergence from the file change to both real Envoys ACKing it (/metrics)', async () => {
      const scrape = async () => (await fetch(`${shim.adminUrl}/metrics`)).text();
      const sample = (text: string, name: string) =>
        Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      const before = await scrape();
      const port = await freePort();
      shim.write(
        'measured.yaml',
        serviceYaml({
          name: 'measured',
          namespace: 'ops',
          clusterIP: '10.96.9.4',
          port,
          annotations: annotations(),
          endpoints: [{ ip: '127.0.0.2', port: backend.port }],
        }),
      );
      const count = 'tunnel_shim_xds_convergence_seconds_count{type="listener"}';
      // Both Envoys get a new LDS version (a listener on the originator, a domain on the terminator's route only: RDS).
      const after = await waitFor(
        'the originator ACKing the new listener',
        async () => {
          const text = await scrape();
          return sample(text, count) > sample(before, count) ? text : undefined;
        },
        20_000,
        100,
      );
      const seconds =
        sample(after, 'tunnel_shim_xds_convergence_seconds_sum{type="listener"}') -
        sample(before, 'tunnel_shim_xds_convergence_seconds_sum{type="listener"}');
      const n = sample(after, count) - sample(before, count);
      console.log(
        `convergence (file event -> Envoy ACK of LDS), real ${mode} Envoy: ` +
          `${((seconds / n) * 1000).toFixed(1)} ms over ${n} ACK(s)`,
      );
      expect(seconds / n).toBeGreaterThan(0);
      expect(seconds / n).toBeLessThan(5);
      expect(sample(after, 'tunnel_shim_xds_pushes_total{type="listener"}')).toBeGreaterThan(
        sample(before, 'tunnel_shim_xds_pushes_total{type="listener"}'),
      );
      shim.remove('measured.yaml');
    });

    it('answers grpcurl (scripts/csds.sh: FetchClientStatus with a node filter) with the same status', async () => {
      // scripts/csds.sh is the README's command: grpcurl with the Envoy protos of the pinned npm package.
      const res = await csdsScript(shim.xdsAddress, 'ops-terminator');
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      const body = JSON.parse(res.stdout) as {
        config: {
          node: { id: string };
          genericXdsConfigs: {
            typeUrl: string;
            name: string;
            configStatus: string;
            clientStatus: string;
            xdsConfig?: Record<string, unknown>;
          }[];
        }[];
      };
      expect(body.config.map((c) => c.node.id)).toEqual(['ops-terminator']);
      const listener = body.config[0]!.genericXdsConfigs.find(
        (g) => g.name === `terminate/${tunnelPort}/127.0.0.2` && g.typeUrl.endsWith('.Listener'),
      )!;
      expect(listener).toMatchObject({
        typeUrl: 'type.googleapis.com/envoy.config.listener.v3.Listener',
        configStatus: 'SYNCED',
        clientStatus: 'ACKED',
      });
      expect(listener.xdsConfig?.['@type']).toBe('type.googleapis.com/envoy.config.listener.v3.Listener');
    });
  });

  describe('tunnel-shim status', () => {
    it('prints a proxy-status table of both Envoys, and JSON with --output json', async () => {
      const table = await runCli(['status', '--admin-address', adminAddress()]);
      expect(table.stderr).toBe('');
      expect(table.code).toBe(0);
      const lines = table.stdout.trim().split('\n');
      expect(lines[0]).toMatch(
        /^NODE\s+ROLE\s+PROTOCOL\s+CLUSTERS\s+ENDPOINTS\s+EXTENSIONS\s+LISTENERS\s+ROUTES\s+LAST NACK$/,
      );
      const synced = 'SYNCED \\([0-9a-f]{8}\\)';
      expect(lines.find((l) => l.startsWith('ops-originator'))).toMatch(
        new RegExp(
          `^ops-originator\\s+originate\\s+${protocol}\\s+${synced}\\s+${synced}\\s+-\\s+${synced}\\s+-\\s+-$`,
        ),
      );
      expect(lines.find((l) => l.startsWith('ops-terminator'))).toMatch(
        new RegExp(`^ops-terminator\\s+terminate\\s+${protocol}\\s+SYNCED .*${synced}\\s+-$`),
      );
      const json = await runCli(['status', '--admin-address', adminAddress(), '--output', 'json']);
      const nodes = JSON.parse(json.stdout) as {
        id: string;
        protocol: string;
        types: Record<string, { status: string; since: string; ackedNonce: string; pendingNonce: string | null }>;
      }[];
      expect(nodes.map((n) => [n.id, n.protocol])).toEqual([
        ['ops-originator', mode],
        ['ops-terminator', mode],
      ]);
      const listener = nodes[0]!.types.listener!;
      expect(listener).toMatchObject({ status: 'SYNCED', pendingNonce: null });
      expect(listener.ackedNonce).not.toBe('');
      expect(Date.parse(listener.since)).toBeGreaterThan(0);
    });

    it('shows one node compactly, and its full resources with --output yaml', async () => {
      const compact = await runCli(['status', 'ops-originator', '--admin-address', adminAddress()]);
      expect(compact.code).toBe(0);
      expect(compact.stdout).toContain(`NODE ops-originator (originate, ${protocol})`);
      expect(compact.stdout).toMatch(
        new RegExp(
          `originate/ops/echo/${echoPort}\\s+127\\.0\\.0\\.1:${echoPort}\\s+tcp_proxy -> ` +
            `originate/ops/echo/${echoPort} \\(CONNECT echo\\.ops\\.svc\\.cluster\\.local:${echoPort}\\)\\s+SYNCED`,
        ),
      );
      expect(compact.stdout).toMatch(
        new RegExp(`originate/ops/echo/${echoPort}\\s+EDS\\s+ROUND_ROBIN\\s+HTTP/2\\s+SYNCED`),
      );
      expect(compact.stdout).toMatch(/originate\/ops\/gw\/\d+\s+EDS\s+ROUND_ROBIN\s+HTTP\/1\.1\s+SYNCED/);
      expect(compact.stdout).toMatch(
        new RegExp(`originate/ops/echo/${echoPort}\\s+127\\.0\\.0\\.2:${tunnelPort}\\s+SYNCED`),
      );
      const terminate = await runCli(['status', 'ops-terminator', '--admin-address', adminAddress()]);
      expect(terminate.stdout).toMatch(
        new RegExp(
          `terminate/${tunnelPort}/127\\.0\\.0\\.2\\s+echo\\.ops\\.svc\\.cluster\\.local:${echoPort}\\s+CONNECT ` +
            `-> backend/ops/echo/${echoPort}/127\\.0\\.0\\.2\\s+SYNCED`,
        ),
      );
      const yaml = await runCli(['status', 'ops-originator', '--admin-address', adminAddress(), '--output', 'yaml']);
      expect(yaml.stdout).toContain('hostname: echo.ops.svc.cluster.local:');
      expect(yaml.stdout).toMatch(/^listeners:$/m);
      const missing = await runCli(['status', 'nobody', '--admin-address', adminAddress()]);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('no connected node "nobody"');
    });

    it('shows a NACK with its message in the table, on the node and type that sent it', async () => {
      const fake = new XdsClient(mode, shim.xdsAddress, { id: 'ops-nacker', metadata: originateMeta });
      try {
        fake.subscribe('cluster');
        fake.ack(await fake.next('cluster'));
        // It rejects every listener response, the retries after backoff too.
        fake.nacking.set('listener', 'Listener rejected: address already in use');
        fake.subscribe('listener');
        await waitFor('NACK recorded', async () =>
          (await runCli(['status', '--admin-address', adminAddress()])).stdout.includes('NACKED'),
        );
        const table = await runCli(['status', '--admin-address', adminAddress()]);
        expect(table.stdout.split('\n').find((l) => l.startsWith('ops-nacker'))).toMatch(
          new RegExp(
            `^ops-nacker\\s+originate\\s+${protocol}\\s+SYNCED \\([0-9a-f]{8}\\)\\s+-\\s+-\\s+` +
              '(NACKED \\([0-9a-f]{8}, retry in \\d+s\\)|STALE \\([0-9a-f]{8}\\))\\s+-\\s+' +
              'listener: Listener rejected: address already in use$',
          ),
        );
        const node = await runCli(['status', 'ops-nacker', '--admin-address', adminAddress()]);
        // Every listener of the rejected response is NACKED (it was all one response), or STALE with that
        // NACK while a retry is unanswered.
        expect(node.stdout).toMatch(
          new RegExp(`\\nNACKED\\n(  listener originate/ops/\\S+: Listener rejected: address already in use\\n)+`),
        );
        expect(node.stdout).toMatch(
          new RegExp(`originate/ops/echo/${echoPort}\\s+127\\.0\\.0\\.1:${echoPort}\\s+.*(NACKED|STALE)`),
        );
      } finally {
        fake.close();
      }
    });

    it('says clearly when no shim answers at the admin address', async () => {
      const res = await runCli(['status', '--admin-address', `127.0.0.1:${await freePort()}`]);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(
        /cannot reach the shim's admin at 127\.0\.0\.1:\d+ .*is tunnel-shim serve running there\?/,
      );
    });
  });

  describe('render equals what a real Envoy receives', () => {
    for (const role of ['originate', 'terminate'] as const) {
      it(`${role}: render's resources equal the Envoy's config_dump, resource by resource`, async () => {
        const envoy = role === 'originate' ? originator : terminator;
        await waitFor(
          'both Envoys SYNCED',
          async () => allSynced(await csds.fetch(), ['ops-originator', 'ops-terminator']),
          20_000,
          100,
        );
        const args = [
          'render',
          '--source',
          `file:${shim.dir}`,
          '--role',
          role,
          '--access-log',
          envoy.accessLogPath,
          '--output',
          'json',
        ];
        if (role === 'originate') args.push('--listen-address', '127.0.0.1');
        const out = await runCli(args);
        expect(out.code).toBe(0);
        const rendered = JSON.parse(out.stdout);
        const held = await envoyHolds(envoy);
        expect(held.listeners).toEqual(byName(rendered.listeners, (l) => l.name, 'envoy.config.listener.v3.Listener'));
        expect(held.routes).toEqual(byName(rendered.routes, (r) => r.name, 'envoy.config.route.v3.RouteConfiguration'));
        expect(held.clusters).toEqual(byName(rendered.clusters, (c) => c.name, 'envoy.config.cluster.v3.Cluster'));
        // Envoy lists the endpoints of every cluster it got over xDS: EDS ones and STATIC ones' load_assignment.
        const inlineEndpoints = rendered.clusters
          .filter((c: any) => c.load_assignment)
          .map((c: any) => c.load_assignment);
        expect(held.endpoints).toEqual(
          byName(
            [...rendered.endpoints, ...inlineEndpoints],
            (e) => e.cluster_name,
            'envoy.config.endpoint.v3.ClusterLoadAssignment',
          ),
        );
        expect(Object.keys(held.listeners).length).toBeGreaterThan(0);
        expect(Object.keys(held.clusters).length).toBeGreaterThan(0);
      });
    }
  });
});
