// CSDS through a real gRPC client: what each node was sent and whether it ACKed or NACKed it, for
// state-of-the-world and delta nodes alike (every test runs with both).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { originateMeta, terminateMeta } from '../helpers/ads-client.js';
import { CsdsClient, byResource } from '../helpers/csds-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';
import { XdsClient, xdsModes, type XdsMode } from '../helpers/xds-client.js';

let shim: TestShim;
let csds: CsdsClient;
const clients: XdsClient[] = [];

function client(mode: XdsMode, id: string, metadata: Record<string, string> = originateMeta): XdsClient {
  const c = new XdsClient(mode, shim.xdsAddress, { id: `${mode}-${id}`, metadata });
  clients.push(c);
  return c;
}

const listenerName = 'originate/c/alpha/7101';

beforeAll(async () => {
  shim = await startShim({
    'alpha.yaml': serviceYaml({
      name: 'alpha',
      namespace: 'c',
      clusterIP: '10.96.2.1',
      port: 7101,
      endpoints: [{ ip: '10.2.0.1', port: 80 }],
    }),
  });
  csds = new CsdsClient(shim.xdsAddress);
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

afterAll(async () => {
  csds.close();
  await shim.stop();
});

describe.each(xdsModes)('CSDS (envoy.service.status.v3), %s node', (mode) => {
  const only = (id: string) => ({ node_matchers: [{ node_id: { exact: `${mode}-${id}` } }] });

  it('reports a NACKed listener as ERROR/NACKED with the message, and an ACKed cluster as SYNCED', async () => {
    const c = client(mode, 'csds-nack');
    c.subscribe('cluster');
    const cds = await c.next('cluster');
    c.ack(cds);
    c.subscribe('listener');
    const lds = await c.next('listener');
    c.nack(lds, 'Listener originate/c/alpha/7101: test says no');
    const config = await waitFor('NACK visible in CSDS', async () => {
      const [node] = await csds.fetch(only('csds-nack'));
      return node && byResource(node).get(`Listener|${listenerName}`)?.client_status === 'NACKED' ? node : undefined;
    });
    expect(config.node.id).toBe(`${mode}-csds-nack`);
    const listener = byResource(config).get(`Listener|${listenerName}`)!;
    expect(listener.config_status).toBe('ERROR');
    expect(listener.error_state?.details).toBe('Listener originate/c/alpha/7101: test says no');
    expect(listener.error_state?.version_info).toBe(lds.reportedVersion(listenerName));
    const cluster = byResource(config).get(`Cluster|${listenerName}`)!;
    expect(cluster).toMatchObject({
      config_status: 'SYNCED',
      client_status: 'ACKED',
      version_info: cds.reportedVersion(listenerName),
    });
    // The Any is the resource as sent, decodable with the proto of its type.
    expect(cluster.xds_config?.type_url).toBe('type.googleapis.com/envoy.config.cluster.v3.Cluster');
    expect(cluster.resource?.name).toBe(listenerName);
  });

  it('tells STALE (sent, not answered) from NOT_SENT (asked for, does not exist)', async () => {
    const c = client(mode, 'csds-stale');
    c.subscribe('cluster');
    await c.next('cluster');
    c.subscribe('endpoint', ['originate/c/nowhere/1']);
    const [node] = await waitFor('node visible', async () => {
      const found = await csds.fetch(only('csds-stale'));
      return found.length === 1 && byResource(found[0]!).has('ClusterLoadAssignment|originate/c/nowhere/1')
        ? found
        : undefined;
    });
    expect(byResource(node!).get(`Cluster|${listenerName}`)).toMatchObject({
      config_status: 'STALE',
      client_status: 'REQUESTED',
    });
    expect(byResource(node!).get('ClusterLoadAssignment|originate/c/nowhere/1')).toMatchObject({
      config_status: 'NOT_SENT',
      client_status: 'DOES_NOT_EXIST',
    });
  });

  it('filters by node id (exact, prefix, regex; ORed) and omits contents when asked', async () => {
    for (const [id, meta] of [
      ['m-originate', originateMeta],
      ['m-terminate', terminateMeta],
      ['other', originateMeta],
    ] as const) {
      const c = client(mode, id, meta);
      c.subscribe('cluster');
      c.ack(await c.next('cluster'));
    }
    const m = `${mode}-m-`;
    await waitFor('three nodes', async () => (await csds.fetch()).length >= 3);
    const ids = async (req: Record<string, unknown>) => (await csds.fetch(req)).map((c) => c.node.id);
    expect(await ids({ node_matchers: [{ node_id: { prefix: m } }] })).toEqual([`${m}originate`, `${m}terminate`]);
    const either = [{ node_id: { safe_regex: { regex: `${m}t.*` } } }, { node_id: { exact: `${mode}-other` } }];
    expect(await ids({ node_matchers: either })).toEqual([`${m}terminate`, `${mode}-other`]);
    expect(await ids({ node_matchers: [{ node_id: { exact: 'nobody' } }] })).toEqual([]);
    const [bare] = await csds.fetch({ ...only('m-terminate'), exclude_resource_contents: true });
    expect(bare!.generic_xds_configs.length).toBeGreaterThan(0);
    expect(bare!.generic_xds_configs.every((g) => g.xds_config === undefined && g.config_status === 'SYNCED')).toBe(
      true,
    );
  });

  it('answers every request on StreamClientStatus with the state at that moment', async () => {
    const c = client(mode, 'csds-stream');
    c.subscribe('cluster');
    const cds = await c.next('cluster');
    const [before] = await csds.stream([only('csds-stream')]);
    c.ack(cds);
    await waitFor(
      'ACK seen',
      async () => (await csds.fetch(only('csds-stream')))[0]?.generic_xds_configs[0]?.config_status === 'SYNCED',
    );
    const both = await csds.stream([only('csds-stream'), { node_matchers: [{ node_id: { exact: 'nobody' } }] }]);
    expect(before![0]!.generic_xds_configs[0]!.config_status).toBe('STALE');
    expect(both[0]![0]!.generic_xds_configs[0]!.config_status).toBe('SYNCED');
    expect(both[1]).toEqual([]);
  });

  it('refuses a matcher it cannot apply with INVALID_ARGUMENT naming the field', async () => {
    await expect(csds.fetch({ node_matchers: [{ node_id: { safe_regex: { regex: '(' } } }] })).rejects.toMatchObject({
      code: 3,
      details: expect.stringContaining('node_matchers[0].node_id.safe_regex.regex'),
    });
  });
});
