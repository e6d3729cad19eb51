// The production source: informers (list, then watch from the list's resourceVersion, with bookmarks;
// relist on 410 Gone; reconnect with backoff) over Services, EndpointSlices, Pods and TCPRoutes.
// Nothing is served until every core informer has listed once, so no Envoy ever sees half a cluster.
// A request the API server refuses (401/403) is a diagnostic naming verb and resource, also before
// that first list, and is retried with backoff; TCPRoutes are picked up whenever they become listable
// (permission granted, or the CRD installed later), without a restart.
import { KubeConfig, ListWatch, Watch, type KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { KubeObject, SourcedObject } from '../model/objects.js';
import { AccessDenials } from './kube-access.js';
import { coreKinds, retryTooMany, tcpRouteKind, tcpRouteResource, tcpRouteVersion, type Kind } from './kube-kinds.js';
import type { Source, SourceState } from './source.js';
import { errorMessage } from '../errors.js';

export interface KubernetesSourceOptions {
  kubeConfig?: KubeConfig;
  /** Watch only these namespaces; all when empty. */
  namespaces?: string[];
  logger: Logger;
  /** First and largest delay between retries after a list, a watch or TCPRoute discovery fails. */
  backoffMs?: [number, number];
}

interface Informer {
  kind: Kind;
  namespace?: string;
  informer: ListWatch<KubernetesObject>;
}

export class KubernetesSource implements Source {
  readonly kubeConfig: KubeConfig;
  private readonly informers: Informer[] = [];
  private onChange?: (state: SourceState) => void;
  private synced = false;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly access = new AccessDenials();
  /** Errors that came from a list (the others come from watches). */
  private readonly listErrors = new WeakSet<object>();
  private watch?: Watch;
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
    // Bookmarks let a reconnecting watch resume from a recent resourceVersion instead of relisting.
    const base = new Watch(this.kubeConfig);
    this.watch = {
      watch: (path: string, params: Record<string, unknown>, cb: never, done: never) =>
        base.watch(path, { ...params, allowWatchBookmarks: true }, cb, done),
    } as unknown as Watch;
    const core = coreKinds(this.kubeConfig).flatMap((kind) => this.addInformers(kind));
    // TCPRoutes join the first sync when they can be listed now; otherwise they are picked up later.
    await Promise.all([...core.map((i) => this.startUntilListed(i)), this.discoverRoutes()]);
    this.synced = true;
    const kinds = [...new Set(this.informers.map((i) => i.kind.kind))];
    this.options.logger.info({ informers: this.informers.length, kinds }, 'kubernetes source synced');
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
          const object = {
            ...(o as object),
            kind: kind.kind,
            apiVersion: (o as KubeObject).apiVersion ?? kind.apiVersion,
          } as KubeObject;
          sourced = { object, origin: { kube: { apiVersion: object.apiVersion!, uid: o.metadata?.uid ?? '' } } };
          this.sourced.set(o, sourced);
        }
        objects.push(sourced);
      }
    }
    return { objects, diagnostics: this.access.diagnostics() };
  }

  private changed(): void {
    this.stats.events++;
    if (this.synced) this.deliver();
  }

  /** After the first sync the whole state; before it only the problems (nothing is served yet). */
  private deliver(): void {
    if (this.stopped) return;
    const problemsOnly = { objects: [], diagnostics: this.access.diagnostics(), complete: false };
    this.onChange?.(this.synced ? this.state() : problemsOnly);
  }

  private addInformers(kind: Kind): Informer[] {
    const namespaces = this.options.namespaces?.length ? this.options.namespaces : [undefined];
    return namespaces.map((namespace) => {
      const list = async () => {
        this.stats.lists++;
        try {
          const result = await retryTooMany(() => kind.list(namespace));
          if (this.access.clear(kind.resource, namespace)) this.deliver();
          return result;
        } catch (err) {
          if (err && typeof err === 'object') this.listErrors.add(err);
          throw err;
        }
      };
      const informer = new ListWatch<KubernetesObject>(
        kind.path(namespace),
        this.watch!,
        list as never,
        false,
        kind.labelSelector,
      );
      const entry: Informer = { kind, namespace, informer };
      informer.on('add', () => this.changed());
      informer.on('update', () => this.changed());
      informer.on('delete', () => this.changed());
      informer.on('error', (err) => this.failed(entry, err));
      this.informers.push(entry);
      return entry;
    });
  }

  private backoff(): [number, number] {
    return this.options.backoffMs ?? [500, 30_000];
  }

  private async startUntilListed({ informer }: Informer): Promise<void> {
    const [first, max] = this.backoff();
    for (let delay = first; !this.stopped; delay = Math.min(delay * 2, max)) {
      await informer.start();
      // start() resolves after a failed list too (the error goes to the 'error' handlers).
      if (informer.latestResourceVersion()) return;
      await this.sleep(delay);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.timers.delete(timer), resolve()), ms);
      this.timers.add(timer);
    });
  }

  private readonly retryDelay = new Map<ListWatch<KubernetesObject>, number>();
  private readonly retrying = new Set<ListWatch<KubernetesObject>>();

  /** A list or watch failed (API server down, RBAC, network): retry with backoff, keep serving. */
  private failed({ kind, namespace, informer }: Informer, err: unknown): void {
    this.stats.errors++;
    const verb = err && typeof err === 'object' && this.listErrors.has(err) ? 'list' : 'watch';
    if (this.access.record(verb, kind.resource, namespace, err)) this.deliver();
    // Before the first sync a failed list is retried by startUntilListed; a failed watch is retried here.
    if (this.stopped || (verb === 'list' && !this.synced) || this.retrying.has(informer)) return;
    this.retrying.add(informer);
    const [first, max] = this.backoff();
    const delay = Math.min((this.retryDelay.get(informer) ?? first / 2) * 2, max);
    this.retryDelay.set(informer, delay);
    const fields = { kind: kind.kind, verb, err: errorMessage(err), retryInMs: delay };
    this.options.logger.warn(fields, 'list or watch failed; serving the last known state and retrying');
    const timer = setTimeout(async () => {
      this.timers.delete(timer);
      this.retrying.delete(informer);
      this.stats.restarts++;
      await informer.start();
      if (informer.latestResourceVersion()) this.retryDelay.delete(informer);
    }, delay);
    this.timers.add(timer);
  }

  /** One try at TCPRoutes: true once their informers are started and listed. */
  private async tryRoutes(): Promise<boolean> {
    const namespace = this.options.namespaces?.[0];
    let version: string | undefined;
    try {
      version = await tcpRouteVersion(this.kubeConfig, namespace);
    } catch (err) {
      if (this.access.record('list', tcpRouteResource, namespace, err)) this.deliver();
      else this.options.logger.warn({ err: errorMessage(err) }, 'TCPRoute discovery failed; retrying');
      return false;
    }
    if (!version) return false;
    if (this.access.clear(tcpRouteResource, namespace)) this.deliver();
    await Promise.all(this.addInformers(tcpRouteKind(this.kubeConfig, version)).map((i) => this.startUntilListed(i)));
    return true;
  }

  /** The first try joins the first sync; after a miss the source syncs without TCPRoutes and keeps trying. */
  private async discoverRoutes(): Promise<void> {
    if (await this.tryRoutes()) return;
    const denied = this.access.diagnostics().some((d) => d.object.name === tcpRouteResource);
    this.options.logger.warn(
      denied
        ? 'TCPRoutes cannot be listed (access denied): weighted splits are off until they can'
        : 'the TCPRoute CRD (gateway.networking.k8s.io) is not installed: weighted splits are off until it is',
    );
    void this.retryRoutes();
  }

  private async retryRoutes(): Promise<void> {
    const [first, max] = this.backoff();
    for (let delay = first; !this.stopped; delay = Math.min(delay * 2, max)) {
      await this.sleep(delay);
      if (this.stopped || !(await this.tryRoutes())) continue;
      this.options.logger.info('TCPRoutes can be listed now: weighted splits are on');
      this.changed();
      return;
    }
  }
}

function loadDefaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
