// The real part alone, before the shim: two Envoys with static configs fetch their SVIDs and the trust
// bundle from a real SPIRE agent's SDS socket (secrets `default` and `ROOTCA`) and complete an mTLS
// handshake with each other, each checking the other's SPIFFE ID.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvoyProcess } from '../helpers/envoy.js';
import { freePort, roundTrip, startEcho, type EchoServer } from '../helpers/net.js';
import { startSpire, type Spire } from '../helpers/spire.js';
import { startEnvoyAs } from '../helpers/spire-envoy.js';
import { sleep, waitFor } from '../helpers/wait.js';

// Two uids no one else uses: SPIRE's unix attestor gives each its own identity.
const ORIGINATOR_UID = 47001;
const TERMINATOR_UID = 47002;

/** A JSON access log with the peer's identity. */
function jsonAccessLog(file: string): Record<string, unknown> {
  return {
    name: 'envoy.access_loggers.file',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
      path: file,
      log_format: {
        json_format: {
          peer_uri_san: '%DOWNSTREAM_PEER_URI_SAN%',
          local_uri_san: '%DOWNSTREAM_LOCAL_URI_SAN%',
          peer_serial: '%DOWNSTREAM_PEER_SERIAL%',
          upstream_host: '%UPSTREAM_HOST%',
          bytes_received: '%BYTES_RECEIVED%',
          response_flags: '%RESPONSE_FLAGS%',
        },
      },
    },
  };
}

function sdsConfig(): Record<string, unknown> {
  const source = { envoy_grpc: { cluster_name: 'spire_agent' } };
  return {
    resource_api_version: 'V3',
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [source] },
  };
}

/** Certificate `default` and bundle `ROOTCA` from the agent; the peer must present `peerId`. */
function tlsContext(peerId: string): Record<string, unknown> {
  return {
    tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: sdsConfig() }],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: peerId } }] },
      validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: sdsConfig() },
    },
  };
}

function staticCluster(name: string, address: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '2s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
    ...extra,
  };
}

function agentCluster(socket: string) {
  const http2 = {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  };
  return staticCluster(
    'spire_agent',
    { pipe: { path: socket } },
    { typed_extension_protocol_options: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': http2 } },
  );
}

function tcpProxyListener(port: number, cluster: string, accessLog: string, transportSocket?: Record<string, unknown>) {
  const tcpProxy = {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
      stat_prefix: cluster,
      cluster,
      access_log: [jsonAccessLog(accessLog)],
      // tcp_proxy otherwise connects upstream as soon as a client connects, before its TLS handshake.
      ...(transportSocket ? { upstream_connect_mode: 'ON_DOWNSTREAM_TLS_HANDSHAKE', max_early_data_bytes: 16384 } : {}),
    },
  };
  return {
    name: `tcp_${port}`,
    address: { socket_address: { address: '127.0.0.1', port_value: port } },
    filter_chains: [{ filters: [tcpProxy], ...(transportSocket ? { transport_socket: transportSocket } : {}) }],
  };
}

const tls = (type: 'Upstream' | 'Downstream', body: Record<string, unknown>) => ({
  name: 'envoy.transport_sockets.tls',
  typed_config: { '@type': `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${type}TlsContext`, ...body },
});

const socketAddress = (port: number) => ({ socket_address: { address: '127.0.0.1', port_value: port } });

/** Waits until the Envoy has both secrets from the agent and its listener is active. */
async function secretsServed(envoy: EnvoyProcess): Promise<Map<string, number>> {
  return waitFor(
    `${envoy.name} to receive default and ROOTCA from the SPIRE agent`,
    async () => {
      const s = await envoy.stats();
      const ready =
        (s.get('sds.default.update_success') ?? 0) >= 1 &&
        (s.get('sds.ROOTCA.update_success') ?? 0) >= 1 &&
        (s.get('listener_manager.total_listeners_active') ?? 0) >= 1;
      return ready && s;
    },
    30_000,
    100,
  );
}

describe('Envoys fetch SVIDs from a real SPIRE agent over SDS', () => {
  let spire: Spire;
  let echo: EchoServer;
  let originator: EnvoyProcess;
  let terminator: EnvoyProcess;
  let originatorPort: number;
  let terminatorPort: number;

  beforeAll(async () => {
    echo = await startEcho('127.0.0.1');
    spire = await startSpire({
      trustDomain: 'spire.test',
      workloads: [
        { identity: 'e2e/originator', uid: ORIGINATOR_UID },
        { identity: 'e2e/terminator', uid: TERMINATOR_UID },
      ],
    });
    [originatorPort, terminatorPort] = [await freePort(), await freePort()];
    const originatorId = spire.spiffeId('e2e/originator');
    const terminatorId = spire.spiffeId('e2e/terminator');
    // One after the other: an Envoy that fails to start leaves the one before it to afterAll.
    terminator = await startEnvoyAs('terminator', TERMINATOR_UID, (dir) => ({
      node: { id: 'terminator', cluster: 'spire-e2e' },
      static_resources: {
        listeners: [
          tcpProxyListener(
            terminatorPort,
            'backend',
            `${dir}/access.log`,
            tls('Downstream', { require_client_certificate: true, common_tls_context: tlsContext(originatorId) }),
          ),
        ],
        clusters: [staticCluster('backend', socketAddress(echo.port)), agentCluster(spire.agentSocket)],
      },
    }));
    originator = await startEnvoyAs('originator', ORIGINATOR_UID, (dir) => ({
      node: { id: 'originator', cluster: 'spire-e2e' },
      static_resources: {
        listeners: [tcpProxyListener(originatorPort, 'terminator', `${dir}/access.log`)],
        clusters: [
          staticCluster('terminator', socketAddress(terminatorPort), {
            transport_socket: tls('Upstream', { common_tls_context: tlsContext(terminatorId) }),
          }),
          agentCluster(spire.agentSocket),
        ],
      },
    }));
    await Promise.all([secretsServed(originator), secretsServed(terminator)]);
  });

  afterAll(async () => {
    await Promise.all([originator?.stop(), terminator?.stop()]);
    await spire?.stop();
    await echo?.close();
  });

  it('carries bytes over mTLS; the terminator logs the originator SPIFFE ID; both count a handshake', async () => {
    const text = `through-spire-${Date.now()}\n`;
    expect(await roundTrip(originatorPort, text)).toContain(text);

    const entry = await waitFor('the terminator access log entry', () => terminator.accessLog()[0], 10_000);
    expect(entry.peer_uri_san).toBe(spire.spiffeId('e2e/originator'));
    expect(entry.local_uri_san).toBe(spire.spiffeId('e2e/terminator'));
    expect(await terminator.stat(`listener.127.0.0.1_${terminatorPort}.ssl.handshake`)).toBe(1);
    expect(await originator.stat('cluster.terminator.ssl.handshake')).toBe(1);
    expect(await terminator.stat('sds.default.update_success')).toBeGreaterThanOrEqual(1);
    expect(await originator.stat('sds.ROOTCA.update_success')).toBeGreaterThanOrEqual(1);
  });

  it('a client without a SPIRE certificate reaches no backend', async () => {
    const before = echo.connections;
    let closed = false;
    const socket = net.connect(terminatorPort, '127.0.0.1');
    socket.on('error', () => {}).on('close', () => (closed = true));
    socket.resume().write('plaintext, not a TLS ClientHello\n');
    await waitFor('the terminator to close the plaintext connection', () => closed, 10_000);
    await sleep(200);
    expect(echo.connections).toBe(before);
    expect(await terminator.stat(`listener.127.0.0.1_${terminatorPort}.ssl.connection_error`)).toBeGreaterThanOrEqual(
      1,
    );
  });
});
