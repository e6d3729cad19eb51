// The small readers behind import-envoyfilter: Istio cluster names, hosts, camelCase fields.
import { describe, expect, it } from 'vitest';
import { dnsLabel, field, parseIstioCluster, serviceOfHost } from '../../src/importer/istio.js';

describe('Istio names', () => {
  it.each([
    [
      'outbound|9000|v2|tcp-echo.shop.svc.cluster.local',
      { namespace: 'shop', name: 'tcp-echo', port: 9000, subset: 'v2' },
    ],
    ['outbound|5432||db.payments.svc.cluster.local', { namespace: 'payments', name: 'db', port: 5432 }],
    ['inbound-vip|6379|tcp|queue.messaging.svc.cluster.local', { namespace: 'messaging', name: 'queue', port: 6379 }],
    ['outbound|80||example.com', undefined],
    ['inbound|9080||', undefined],
    ['cluster_0', undefined],
  ])('%s', (name, expected) => {
    expect(parseIstioCluster(name)).toEqual(expected);
  });

  it('reads Service hosts with or without the cluster domain, and nothing else', () => {
    expect(serviceOfHost('api.warehouse.svc')).toEqual({ name: 'api', namespace: 'warehouse' });
    expect(serviceOfHost('api.warehouse.svc.corp.local')).toEqual({ name: 'api', namespace: 'warehouse' });
    expect(serviceOfHost('127.0.0.1')).toBeUndefined();
    expect(serviceOfHost('api.warehouse')).toBeUndefined();
  });

  it('reads proto names and Istio camelCase names alike, never renaming map keys', () => {
    expect(field({ idle_timeout: '1s' }, 'idle_timeout')).toBe('1s');
    expect(field({ idleTimeout: '2s' }, 'idle_timeout')).toBe('2s');
    expect(field({ filterMetadata: { 'envoy.lb': { appVersion: 'x' } } }, 'filter_metadata')).toEqual({
      'envoy.lb': { appVersion: 'x' },
    });
    expect(field(null, 'x')).toBeUndefined();
  });

  it('folds a cluster name into a Kubernetes name', () => {
    expect(dnsLabel('Reports_By_Region')).toBe('reports-by-region');
    expect(dnsLabel('___')).toBe('imported');
  });
});
