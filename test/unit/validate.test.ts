// The resource check uses the protos' own protoc-gen-validate rules.
import { describe, expect, it } from 'vitest';
import { fromEnvoyJson } from '../../src/envoy/json.js';
import { lookupType } from '../../src/envoy/protos.js';
import { validateMessage } from '../../src/envoy/validate.js';

const tcpProxy = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const check = (type: string, json: Record<string, unknown>) =>
  validateMessage(type, fromEnvoyJson(lookupType(type), json));

describe('validate.rules', () => {
  it('accepts a valid tcp_proxy', () => {
    expect(check(tcpProxy, { stat_prefix: 's', cluster: 'c', tunneling_config: { hostname: 'h:1' } })).toEqual([]);
  });

  it('reports string, oneof, numeric, duration and repeated rules with paths', () => {
    const violations = check(tcpProxy, {
      stat_prefix: '',
      max_connect_attempts: 0,
      max_downstream_connection_duration: '0.0001s',
      tunneling_config: { hostname: '' },
    });
    expect(violations).toEqual(
      expect.arrayContaining([
        { path: 'stat_prefix', message: 'must have at least 1 characters' },
        { path: 'cluster_specifier', message: 'one of cluster, weighted_clusters is required' },
        { path: 'max_connect_attempts', message: 'must be at least 1' },
        { path: 'max_downstream_connection_duration', message: expect.stringContaining('must be at least') },
        { path: 'tunneling_config.hostname', message: 'must have at least 1 characters' },
      ]),
    );
  });

  it('checks rules on wrapped values and inside Any', () => {
    const listener = {
      name: 'l',
      address: { socket_address: { address: '0.0.0.0', port_value: 1 } },
      filter_chains: [
        {
          filter_chain_match: { prefix_ranges: [{ address_prefix: '10.0.0.1', prefix_len: 200 }] },
          filters: [{ name: 'tcp', typed_config: { '@type': `type.googleapis.com/${tcpProxy}`, cluster: 'c' } }],
        },
      ],
    };
    const paths = check('envoy.config.listener.v3.Listener', listener).map((v) => v.path);
    expect(paths).toContain('filter_chains[0].filter_chain_match.prefix_ranges[0].prefix_len');
    expect(paths).toContain('filter_chains[0].filters[0].typed_config.stat_prefix');
  });

  it('rejects unknown fields and bad durations when converting', () => {
    expect(() => fromEnvoyJson(lookupType(tcpProxy), { stat_prefx: 's' })).toThrow(/stat_prefx: no such field/);
    expect(() => fromEnvoyJson(lookupType(tcpProxy), { idle_timeout: '5 minutes' })).toThrow(/not a duration/);
  });
});
