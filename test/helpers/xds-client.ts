// One test client for both ADS variants, so a test of what the shim reports about a node (CSDS, status,
// metrics) runs once with a state-of-the-world client and once with a delta one: `describe.each(xdsModes)`.
import type { ResourceKind } from '../../src/envoy/protos.js';
import { AdsClient } from './ads-client.js';
import { DeltaClient } from './delta-client.js';

export type XdsMode = 'sotw' | 'delta';
export const xdsModes: XdsMode[] = ['sotw', 'delta'];

export interface XdsResponse {
  kind: ResourceKind;
  nonce: string;
  /** version_info (SotW) or system_version_info (delta). */
  version: string;
  resources: { name: string; version: string; object: Record<string, unknown> }[];
  /** What CSDS and the Envoy's config_dump report as a resource's version (see ResourceStatus.version). */
  reportedVersion(name: string): string;
}

export class XdsClient {
  private readonly sotw?: AdsClient;
  private readonly delta?: DeltaClient;
  private readonly subscribed = new Map<ResourceKind, string[] | undefined>();

  constructor(
    readonly mode: XdsMode,
    address: string,
    node: { id: string; metadata: Record<string, string> },
  ) {
    if (mode === 'sotw') this.sotw = new AdsClient(address, node);
    else this.delta = new DeltaClient(address, node);
  }

  /** NACK every response of these types with this message, like an Envoy with a lasting problem. */
  get nacking(): Map<ResourceKind, string> {
    return (this.sotw ?? this.delta)!.nacking;
  }

  get error() {
    return (this.sotw ?? this.delta)!.error;
  }

  /** Responses received so far: an index for `nextSince`. */
  get count(): number {
    return (this.sotw ?? this.delta)!.responses.length;
  }

  /** The first request of a type: every resource (`names` undefined) or these names. */
  subscribe(kind: ResourceKind, names?: string[]): void {
    this.subscribed.set(kind, names);
    if (this.sotw) this.sotw.send(kind, { names });
    else this.delta!.send(kind, { subscribe: names });
  }

  ack(r: XdsResponse): void {
    if (this.sotw) this.sotw.ack(this.sotwResponse(r), this.names(r.kind));
    else this.delta!.send(r.kind, { nonce: r.nonce });
  }

  nack(r: XdsResponse, message: string): void {
    if (this.sotw) this.sotw.send(r.kind, { names: this.names(r.kind), nonce: r.nonce, error: message });
    else this.delta!.send(r.kind, { nonce: r.nonce, error: message });
  }

  /** A request answering a nonce the shim never sent for this type (ignored as stale). */
  staleAnswer(kind: ResourceKind): void {
    if (this.sotw) this.sotw.send(kind, { names: this.names(kind), nonce: 'old-nonce' });
    else this.delta!.send(kind, { nonce: 'old-nonce' });
  }

  async next(kind: ResourceKind, timeoutMs = 5000): Promise<XdsResponse> {
    return this.nextSince(kind, this.count, timeoutMs);
  }

  async nextSince(kind: ResourceKind, index: number, timeoutMs = 5000): Promise<XdsResponse> {
    const r = this.sotw
      ? await this.sotw.nextSince(kind, index, timeoutMs)
      : await this.delta!.nextSince(kind, index, timeoutMs);
    return this.normalise(r);
  }

  /** The last response of any type. */
  last(): XdsResponse {
    return this.normalise((this.sotw ?? this.delta)!.responses.at(-1)!);
  }

  close(): void {
    (this.sotw ?? this.delta)!.close();
  }

  private names(kind: ResourceKind): string[] | undefined {
    return this.subscribed.get(kind);
  }

  private sotwResponse(r: XdsResponse) {
    return { kind: r.kind, nonce: r.nonce, version_info: r.version, type_url: '', resources: [] };
  }

  private normalise(r: AdsClient['responses'][number] | DeltaClient['responses'][number]): XdsResponse {
    if ('version_info' in r) {
      const resources = r.resources.map((x) => ({ ...x, version: r.version_info }));
      return {
        kind: r.kind,
        nonce: r.nonce,
        version: r.version_info,
        resources,
        reportedVersion: () => r.version_info,
      };
    }
    const version = (name: string) => {
      const found = r.resources.find((x) => x.name === name);
      if (!found) throw new Error(`${name} is not in the ${r.kind} response`);
      return found.version;
    };
    return {
      kind: r.kind,
      nonce: r.nonce,
      version: r.system_version_info,
      resources: r.resources,
      reportedVersion: version,
    };
  }
}
