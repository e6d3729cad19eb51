// Kubernetes objects for tests, written through a real API server, and the shim on the Kubernetes source.
import {
  KubernetesObjectApi,
  loadAllYaml,
  PatchStrategy,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { Shim, type ShimOptions } from '../../src/shim.js';
import { EventRecorder } from '../../src/sources/kube-events.js';
import { KubernetesSource } from '../../src/sources/kubernetes.js';

import { repo } from './repo.js';

/** Creates or replaces each object (server-side apply), like `kubectl apply`. */
export async function apply(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const o of objects) {
    await api.patch(o, undefined, undefined, 'tests', true, PatchStrategy.ServerSideApply);
  }
}

export async function remove(kc: KubeConfig, objects: KubernetesObject[]): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const o of objects) await api.delete(o).catch(() => undefined);
}

export function deployObjects(file: string): KubernetesObject[] {
  return loadAllYaml(fs.readFileSync(path.join(repo, 'deploy', file), 'utf8')) as KubernetesObject[];
}

export function service(s: {
  name: string;
  namespace: string;
  port: number;
  annotations?: Record<string, string>;
  portName?: string;
}): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: s.name, namespace: s.namespace, annotations: s.annotations ?? { 'tunnel-shim.io/tunnel': 'h2' } },
    spec: { ports: [{ name: s.portName ?? 'tcp', port: s.port, protocol: 'TCP' }] },
  } as KubernetesObject;
}

/** `pods` names the Pod behind an address (the endpoint's `targetRef`), as the EndpointSlice controller writes it. */
export function endpointSlice(s: {
  service: string;
  namespace: string;
  port: number;
  ips: string[];
  portName?: string;
  name?: string;
  pods?: Record<string, string>;
}): KubernetesObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: s.name ?? `${s.service}-1`,
      namespace: s.namespace,
      labels: { 'kubernetes.io/service-name': s.service },
    },
    addressType: 'IPv4',
    ports: [{ name: s.portName ?? 'tcp', port: s.port, protocol: 'TCP' }],
    endpoints: s.ips.map((ip) => ({
      addresses: [ip],
      conditions: { ready: true },
      ...(s.pods?.[ip] ? { targetRef: { kind: 'Pod', namespace: s.namespace, name: s.pods[ip] } } : {}),
    })),
  } as KubernetesObject;
}

/** A Pod as the API server keeps it: no scheduler or kubelet runs here, so it stays Pending; its labels count. */
export function pod(p: { name: string; namespace: string; labels: Record<string, string> }): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    spec: { containers: [{ name: 'app', image: 'registry.invalid/app:1' }] },
  } as KubernetesObject;
}

export interface KubeShim {
  shim: Shim;
  source: KubernetesSource;
  events: EventRecorder;
  xdsAddress: string;
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startKubeShim(
  kc: KubeConfig,
  options: {
    namespaces?: string[];
    backoffMs?: [number, number];
    xdsHost?: string;
    /** mTLS settings of `serve`. */
    tls?: Pick<ShimOptions, 'trustDomain' | 'mtlsDefault' | 'insecureIdentities'>;
  } = {},
): Promise<KubeShim> {
  const logger = pino({ level: process.env.SHIM_LOG_LEVEL ?? 'silent' });
  const source = new KubernetesSource({
    kubeConfig: kc,
    logger,
    namespaces: options.namespaces,
    backoffMs: options.backoffMs ?? [200, 2000],
  });
  const events = new EventRecorder(kc, logger);
  const xdsHost = options.xdsHost ?? '127.0.0.1';
  const shim = new Shim({
    source,
    events,
    xdsAddress: `${xdsHost}:0`,
    adminAddress: '127.0.0.1:0',
    logger,
    ...options.tls,
  });
  await shim.start();
  return {
    shim,
    source,
    events,
    xdsAddress: `${xdsHost}:${shim.xdsPort}`,
    adminUrl: `http://127.0.0.1:${shim.adminPort}`,
    stop: () => shim.stop(),
  };
}
