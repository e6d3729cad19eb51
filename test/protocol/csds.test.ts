// CSDS through a real gRPC client: what each node was sent and whether it ACKed or NACKed it.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdsClient, originateMeta, terminateMeta } from '../helpers/ads-client.js';
import { CsdsClient, byResource } from '../helpers/csds-client.js';
import { serviceYaml } from '../helpers/objects.js';
import { startShim, type TestShim } from '../helpers/shim.js';
import { waitFor } from '../helpers/wait.js';

let shim: TestShim;
let csds: CsdsClient;
const clients: AdsClient[] = [];

function client(id: string, metadata: Record<string, string> = originateMeta): AdsClient {
  const c = new AdsClient(shim.xdsAddress, { id, metadata });
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

describe('CSDS (envoy.service.status.v3)', () => {
  it('reports a NACKed listener as ERROR/NACKED with the message, and an ACKed cluster as SYNCED', async () => {
    const c = client('csds-nack');
    c.send('cluster');
    const cds = await c.next('cluster');
    c.ack(cds);
    c.send('listener');
    const lds = await c.next('listener');
    c.send('listener', { nonce: lds.nonce, error: 'Listener originate/c/alpha/7101: test says no' });
    const config = await waitFor('NACK visible in CSDS', async () => {
      const [node] = await csds.fetch({ node_matchers: [{ node_id: { exact: 'csds-nack' } }] });
      return node && byResource(node).get(`Listener|${listenerName}`)?.client_status === 'NACKED' ? node : undefined;
    });
    expect(config.node.id).toBe('csds-nack');
    const listener = byResource(config).get(`Listener|${listenerName}`)!;
    expect(listener.config_status).toBe('ERROR');
    expect(listener.error_state?.details).toBe('Listener originate/c/alpha/7101: test says no');
    expect(listener.error_state?.version_info).toBe(lds.version_info);
    const cluster = byResource(config).get(`Cluster|${listenerName}`)!;
    expect(cluster).toMatchObject({ config_status: 'SYNCED', client_status: 'ACKED', version_info: cds.version_info });
    // The Any is the resource as sent, decodable with the proto of its type.
    expect(cluster.xds_config?.type_url).toBe('type.googleapis.com/envoy.config.cluster.v3.Cluster');
    expect(cluster.resource?.name).toBe(listenerName);
  });

  it('tells STALE (sent, not answered) from NOT_SENT (asked for, does not exist)', async () => {
    const c = client('csds-stale');
    c.send('cluster');
    await c.next('cluster');
    c.send('endpoint', { names: ['originate/c/nowhere/1'] });
    const [node] = await waitFor('node visible', async () => {
      const found = await csds.fetch({ node_matchers: [{ node_id: { exact: 'csds-stale' } }] });
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
      const c = client(id, meta);
      c.send('cluster');
      c.ack(await c.next('cluster'));
    }
    await waitFor('three nodes', async () => (await csds.fetch()).length >= 3);
    const ids = async (req: Record<string, unknown>) => (await csds.fetch(req)).map((c) => c.node.id);
    expect(await ids({ node_matchers: [{ node_id: { prefix: 'm-' } }] })).toEqual(['m-originate', 'm-terminate']);
    expect(
      await ids({ node_matchers: [{ node_id: { safe_regex: { regex: 'm-t.*' } } }, { node_id: { exact: 'other' } }] }),
    ).toEqual(['m-terminate', 'other']);
    expect(await ids({ node_matchers: [{ node_id: { exact: 'nobody' } }] })).toEqual([]);
    const [bare] = await csds.fetch({
      node_matchers: [{ node_id: { exact: 'm-terminate' } }],
      exclude_resource_contents: true,
    });
    expect(bare!.generic_xds_configs.length).toBeGreaterThan(0);
    expect(bare!.generic_xds_configs.every((g) => g.xds_config === undefined && g.config_status === 'SYNCED')).toBe(
      true,
    );
  });

  it('answers every request on StreamClientStatus with the state at that moment', async () => {
    const c = client('csds-stream');
    c.send('cluster');
    const cds = await c.next('cluster');
    const [before] = await csds.stream([{ node_matchers: [{ node_id: { exact: 'csds-stream' } }] }]);
    c.ack(cds);
    await waitFor(
      'ACK seen',
      async () =>
        (await csds.fetch({ node_matchers: [{ node_id: { exact: 'csds-stream' } }] }))[0]?.generic_xds_configs[0]
          ?.config_status === 'SYNCED',
    );
    const both = await csds.stream([
      { node_matchers: [{ node_id: { exact: 'csds-stream' } }] },
      { node_matchers: [{ node_id: { exact: 'nobody' } }] },
    ]);
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
