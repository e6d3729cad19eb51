// Diagnostics on Kubernetes objects become Warning Events on those objects, so `kubectl describe`
// shows what is wrong. Rate-limited: each (object, reason, message) at most once per interval, and a
// global budget per second so a broken bulk apply cannot flood the API server.
import os from 'node:os';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Diagnostic } from '../model/diagnostics.js';
import { fieldName } from '../model/diagnostics.js';
import { errorMessage } from '../errors.js';

export interface EventRecorderOptions {
  repeatAfterMs?: number;
  perSecond?: number;
}

export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly lastSent = new Map<string, number>();
  private tokens: number;
  private refilledAt = Date.now();
  /** Events created, for tests and metrics. */
  created = 0;

  constructor(
    kubeConfig: KubeConfig,
    private readonly logger: Logger,
    private readonly options: EventRecorderOptions = {},
  ) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.tokens = options.perSecond ?? 10;
  }

  /** Records the diagnostics that name an API object; others (files, Envoy resources) are skipped. */
  record(diagnostics: readonly Diagnostic[]): void {
    const now = Date.now();
    this.tokens = Math.min(
      this.options.perSecond ?? 10,
      this.tokens + ((now - this.refilledAt) / 1000) * (this.options.perSecond ?? 10),
    );
    this.refilledAt = now;
    for (const d of diagnostics) {
      const kube = d.origin?.kube;
      if (!kube?.uid) continue;
      const key = `${kube.uid}|${d.reason}|${d.message}`;
      if (now - (this.lastSent.get(key) ?? -Infinity) < (this.options.repeatAfterMs ?? 10 * 60_000)) continue;
      if (this.tokens < 1) {
        this.logger.debug({ object: d.object }, 'event budget exhausted; dropping event');
        continue;
      }
      this.tokens--;
      this.lastSent.set(key, now);
      void this.create(d, kube);
    }
    // Forget keys long past their interval so memory follows current problems only.
    for (const [key, at] of this.lastSent)
      if (now - at > 2 * (this.options.repeatAfterMs ?? 10 * 60_000)) this.lastSent.delete(key);
  }

  private async create(d: Diagnostic, kube: { apiVersion: string; uid: string }): Promise<void> {
    const now = new Date();
    const field = d.path.length ? `${fieldName(d.path)}: ` : '';
    try {
      await this.api.createNamespacedEvent({
        namespace: d.object.namespace,
        body: {
          metadata: { generateName: `${d.object.name}.`, namespace: d.object.namespace },
          involvedObject: {
            apiVersion: kube.apiVersion,
            kind: d.object.kind,
            name: d.object.name,
            namespace: d.object.namespace,
            uid: kube.uid,
          },
          type: 'Warning',
          reason: d.reason,
          message: `${field}${d.message}`.slice(0, 1024),
          source: { component: 'tunnel-shim' },
          reportingComponent: 'tunnel-shim',
          reportingInstance: os.hostname(),
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
      this.created++;
    } catch (err) {
      this.logger.warn({ object: d.object, err: errorMessage(err) }, 'could not create a Kubernetes Event');
    }
  }
}
