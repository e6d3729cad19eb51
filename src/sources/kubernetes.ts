// The production source: informers (list, then watch from the list's resourceVersion, with bookmarks;
// relist on 410 Gone; reconnect with backoff) over Services, EndpointSlices, Pods and TCPRoutes.
// Nothing is delivered until every informer has listed once, so no Envoy ever sees half a cluster.
import {
  ApisApi, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, KubeConfig, ListWatch, Watch, type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeObject, SourcedObject } from '../model/objects.js';
import type { Source, SourceState } from './source.js';

interface Kind {
  kind: string;
  apiVersion: string;
  /** Watch path for all namespaces, or for one. */
  path(namespace?: string): string;
  list(namespace?: string): Promise<{ items: KubernetesObject[]; metadata?: { resourceVersion?: string } }>;
}

export interface KubernetesSourceOptions {
  kubeConfig?: KubeConfig;
  /** Watch only these namespaces; all when empty. */
  namespaces?: string[];
  logger: Logger;
  /** First and largest delay between reconnects after a watch fails. */
  backoffMs?: [number, number];
}

const gatewayGroup = 'gateway.networking.k8s.io';

/** kube-apiserver answers 429 while a CRD's storage initialises; retry those lists briefly. */
async function retryTooMany<T>(fn: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: number; statusCode?: number }).code ?? (err as { statusCode?: number }).statusCode;
      if (code !== 429 || i >= attempts) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export class KubernetesSource implements Source {
  readonly kubeConfig: KubeConfig;
  private readonly informers: { kind: Kind; informer: ListWatch<KubernetesObject> }[] = [];
  private onChange?: (state: SourceState) => void;
  private synced = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Watch restarts, relists and errors, for tests and metrics. */
  readonly stats = { errors: 0, restarts: 0, events: 0, lists: 0 };

  constructor(private readonly options: KubernetesSourceOptions) {
    this.kubeConfig = options.kubeConfig ?? loadDefaultKubeConfig();
  }

  describe(): string {
    const ns = this.options.namespaces?.length ? ` (namespaces ${this.options.namespaces.join(', ')})` : '';
    return `kubernetes ${this.kubeConfig.getCurrentCluster()?.server ?? ''}${ns}`;
  }

  async start(onChange: (state: SourceState) => void): Promise<void> {
    this.onChange = onChange;
    const kinds = await this.kinds();
    const namespaces = this.options.namespaces?.length ? this.options.namespaces : [undefined];
    // Bookmarks let a reconnecting watch resume from a recent resourceVersion instead of relisting.
    const base = new Watch(this.kubeConfig);
    const watch = { watch: (path: string, params: Record<string, unknown>, cb: never, done: never) => base.watch(path, { ...params, allowWatchBookmarks: true }, cb, done) } as unknown as Watch;
    for (const kind of kinds) {
      for (const namespace of namespaces) {
        const list = () => {
          this.stats.lists++;
          return retryTooMany(() => kind.list(namespace));
        };
        const informer = new ListWatch<KubernetesObject>(kind.path(namespace), watch, list as never, false);
        informer.on('add', () => this.changed());
        informer.on('update', () => this.changed());
        informer.on('delete', () => this.changed());
        informer.on('error', (err) => this.failed(kind, informer, err));
        this.informers.push({ kind, informer });
      }
    }
    await Promise.all(this.informers.map(({ kind, informer }) => this.startUntilListed(kind, informer)));
    this.synced = true;
    this.options.logger.info({ informers: this.informers.length, kinds: kinds.map((k) => k.kind) }, 'kubernetes source synced');
    this.changed();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.informers.map(({ informer }) => informer.stop()));
  }

  private readonly sourced = new WeakMap<object, SourcedObject>();

  /** Every object the informers hold, with kind and apiVersion (list items lack them). */
  state(): SourceState {
    const objects: SourcedObject[] = [];
    for (const { kind, informer } of this.informers) {
      for (const o of informer.list()) {
        // An unchanged object is handed on as the very same object, so the model reuses what it built from it.
        let sourced = this.sourced.get(o);
        if (!sourced) {
          const object = { ...(o as object), kind: kind.kind, apiVersion: (o as KubeObject).apiVersion ?? kind.apiVersion } as KubeObject;
          sourced = { object, origin: { kube: { apiVersion: object.apiVersion!, uid: o.metadata?.uid ?? '' } } };
          this.sourced.set(o, sourced);
        }
        objects.push(sourced);
      }
    }
    return { objects, diagnostics: [] };
  }

  private changed(): void {
    this.stats.events++;
    if (this.synced && !this.stopped) this.onChange?.(this.state());
  }

  private async startUntilListed(kind: Kind, informer: ListWatch<KubernetesObject>): Promise<void> {
    const [first, max] = this.options.backoffMs ?? [500, 30_000];
    for (let delay = first; !this.stopped; delay = Math.min(delay * 2, max)) {
      await informer.start();
      // start() resolves after a failed list too (the error goes to the 'error' handlers).
      if (informer.latestResourceVersion()) return;
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private readonly backoff = new Map<ListWatch<KubernetesObject>, number>();
  private readonly retrying = new Set<ListWatch<KubernetesObject>>();

  /** A list or watch failed (API server down, RBAC, network): retry with backoff, keep serving. */
  private failed(kind: Kind, informer: ListWatch<KubernetesObject>, err: unknown): void {
    this.stats.errors++;
    if (this.stopped || !this.synced || this.retrying.has(informer)) return;
    this.retrying.add(informer);
    const [first, max] = this.options.backoffMs ?? [500, 30_000];
    const delay = Math.min((this.backoff.get(informer) ?? first / 2) * 2, max);
    this.backoff.set(informer, delay);
    this.options.logger.warn({ kind: kind.kind, err: (err as Error).message ?? String(err), retryInMs: delay }, 'watch failed; serving the last known state and retrying');
    const timer = setTimeout(async () => {
      this.timers.delete(timer);
      this.retrying.delete(informer);
      this.stats.restarts++;
      await informer.start();
      if (informer.latestResourceVersion()) this.backoff.delete(informer);
    }, delay);
    this.timers.add(timer);
  }

  private async kinds(): Promise<Kind[]> {
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    const discovery = this.kubeConfig.makeApiClient(DiscoveryV1Api);
    const kinds: Kind[] = [
      {
        kind: 'Service', apiVersion: 'v1',
        path: (ns) => (ns ? `/api/v1/namespaces/${ns}/services` : '/api/v1/services'),
        list: (ns) => (ns ? core.listNamespacedService({ namespace: ns }) : core.listServiceForAllNamespaces()),
      },
      {
        kind: 'EndpointSlice', apiVersion: 'discovery.k8s.io/v1',
        path: (ns) => (ns ? `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices` : '/apis/discovery.k8s.io/v1/endpointslices'),
        list: (ns) => (ns ? discovery.listNamespacedEndpointSlice({ namespace: ns }) : discovery.listEndpointSliceForAllNamespaces()),
      },
      {
        kind: 'Pod', apiVersion: 'v1',
        path: (ns) => (ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods'),
        list: (ns) => (ns ? core.listNamespacedPod({ namespace: ns }) : core.listPodForAllNamespaces()),
      },
    ];
    const version = await this.tcpRouteVersion();
    if (version) {
      const custom = this.kubeConfig.makeApiClient(CustomObjectsApi);
      const plural = 'tcproutes';
      kinds.push({
        kind: 'TCPRoute', apiVersion: `${gatewayGroup}/${version}`,
        path: (ns) => (ns ? `/apis/${gatewayGroup}/${version}/namespaces/${ns}/${plural}` : `/apis/${gatewayGroup}/${version}/${plural}`),
        list: (ns) => (ns
          ? custom.listNamespacedCustomObject({ group: gatewayGroup, version, namespace: ns, plural })
          : custom.listClusterCustomObject({ group: gatewayGroup, version, plural })) as never,
      });
    } else {
      this.options.logger.warn('the TCPRoute CRD (gateway.networking.k8s.io) is not installed: weighted splits are off');
    }
    return kinds;
  }

  /** v1 where the CRD serves it, else v1alpha2; undefined when TCPRoute is not installed. */
  private async tcpRouteVersion(): Promise<string | undefined> {
    const groups = await this.kubeConfig.makeApiClient(ApisApi).getAPIVersions();
    const group = groups.groups.find((g) => g.name === gatewayGroup);
    if (!group) return undefined;
    const custom = this.kubeConfig.makeApiClient(CustomObjectsApi);
    for (const version of ['v1', 'v1alpha2']) {
      if (!group.versions.some((v) => v.version === version)) continue;
      try {
        await retryTooMany(() => custom.listClusterCustomObject({ group: gatewayGroup, version, plural: 'tcproutes', limit: 1 }));
        return version;
      } catch {
        // The group exists but this version has no tcproutes: try the next one.
      }
    }
    return undefined;
  }
}

function loadDefaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
