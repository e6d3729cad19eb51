// Which service account owns a Pod name or a Pod IP, from the Pods the source delivers: what the xDS layer
// asks (through PodOwners) when a stream's certificate must match the Pod its node claims to be.
import { isPod, type SourcedObject } from './model/objects.js';
import type { Source } from './sources/source.js';
import type { PodOwner, PodOwners } from './xds/peer-identity.js';

interface PodShape {
  metadata?: { name?: unknown; namespace?: unknown };
  spec?: { serviceAccountName?: unknown };
  status?: { phase?: unknown; podIP?: unknown; podIPs?: unknown };
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export class PodOwnerIndex implements PodOwners {
  private objects: readonly SourcedObject[] = [];
  private indexed?: readonly SourcedObject[];
  private names = new Map<string, PodOwner>();
  private ips = new Map<string, PodOwner[]>();

  /** The source, with each complete state it delivers kept here too (indexed when next asked). */
  watching(source: Source): Source {
    return {
      start: (onChange) =>
        source.start((state) => {
          if (state.complete !== false) this.objects = state.objects;
          onChange(state);
        }),
      stop: () => source.stop(),
      describe: () => source.describe(),
    };
  }

  byName(namespace: string, name: string): PodOwner | undefined {
    return this.index().names.get(`${namespace}/${name}`);
  }

  byIp(ip: string): readonly PodOwner[] {
    return this.index().ips.get(ip) ?? [];
  }

  /** Built on the first question after a change: questions come only when a stream starts. */
  private index(): this {
    if (this.indexed === this.objects) return this;
    this.names = new Map();
    this.ips = new Map();
    for (const { object } of this.objects) {
      if (!isPod(object)) continue;
      const pod = object as PodShape;
      const namespace = text(pod.metadata?.namespace) ?? 'default';
      const name = text(pod.metadata?.name);
      if (!name) continue;
      const owner = { namespace, name, serviceAccount: text(pod.spec?.serviceAccountName) ?? 'default' };
      this.names.set(`${namespace}/${name}`, owner);
      // A finished Pod's IP may already be another Pod's.
      if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') continue;
      const ips = new Set([text(pod.status?.podIP)]);
      if (Array.isArray(pod.status?.podIPs))
        for (const p of pod.status.podIPs) ips.add(text((p as { ip?: unknown })?.ip));
      for (const ip of ips) if (ip) this.ips.set(ip, [...(this.ips.get(ip) ?? []), owner]);
    }
    this.indexed = this.objects;
    return this;
  }
}
