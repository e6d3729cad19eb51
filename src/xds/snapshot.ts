// A node view's resources, validated and encoded once. Encodings are shared by content across views
// and across rebuilds, so an unchanged resource is never encoded twice.
import { contentVersion, encodeResource, type EncodedResource } from '../envoy/encode.js';
import { fromEnvoyJson } from '../envoy/json.js';
import { lookupType, messageNameOf, TypeUrl, type ResourceKind } from '../envoy/protos.js';
import { validateMessage } from '../envoy/validate.js';
import type { Diagnostic } from '../model/diagnostics.js';
import type { Model } from '../model/tunnel.js';
import { translate, type NodeView } from '../translate/index.js';

export interface TypeSnapshot {
  resources: Map<string, EncodedResource>;
  /** Hash of every (name, version) pair: equal versions mean equal content. */
  version: string;
  /**
   * When the source change that produced this version happened (epoch ms); kept across rebuilds that
   * leave the type unchanged. Push and convergence times are measured from it.
   */
  changedAt?: number;
}

export type Snapshot = Record<ResourceKind, TypeSnapshot>;

export interface BuiltSnapshot {
  snapshot: Snapshot;
  diagnostics: Diagnostic[];
}

const kinds: ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint'];

/** The version of a set of resources, as sent in `version_info`. */
export function setVersion(entries: Iterable<EncodedResource>): string {
  const parts: string[] = [];
  for (const e of entries) parts.push(`${e.name}=${e.version}`);
  return contentVersion(parts.sort().join('\n'));
}

export class ResourceEncoder {
  private memo = new Map<string, EncodedResource | Diagnostic[]>();
  private nextMemo = new Map<string, EncodedResource | Diagnostic[]>();
  /** How many resources were validated and encoded (not served from the memo): for tests and benchmarks. */
  encodeCount = 0;

  build(model: Model, view: NodeView): BuiltSnapshot {
    const { resources, diagnostics } = translate(model, view);
    const snapshot = {} as Snapshot;
    for (const kind of kinds) {
      const map = new Map<string, EncodedResource>();
      for (const { name, object } of resources[kind]) {
        const encoded = this.encode(kind, name, object);
        if (Array.isArray(encoded)) diagnostics.push(...encoded);
        else map.set(name, encoded);
      }
      snapshot[kind] = { resources: map, version: setVersion(map.values()) };
    }
    return { snapshot, diagnostics };
  }

  /** Forget encodings no snapshot built since the last call used. Call after each full rebuild. */
  sweep(): void {
    this.memo = this.nextMemo;
    this.nextMemo = new Map();
  }

  private encode(kind: ResourceKind, name: string, object: Record<string, unknown>): EncodedResource | Diagnostic[] {
    const key = `${kind}\u0000${JSON.stringify(object)}`;
    const known = this.nextMemo.get(key) ?? this.memo.get(key);
    if (known) {
      this.nextMemo.set(key, known);
      return known;
    }
    this.encodeCount++;
    const typeUrl = TypeUrl[kind];
    let result: EncodedResource | Diagnostic[];
    try {
      const protoForm = fromEnvoyJson(lookupType(messageNameOf(typeUrl)), object);
      const violations = validateMessage(messageNameOf(typeUrl), protoForm);
      result = violations.length > 0
        ? violations.map((v) => invalidResource(kind, name, `${v.path} ${v.message}`))
        : encodeResource(typeUrl, name, protoForm, object);
    } catch (err) {
      result = [invalidResource(kind, name, (err as Error).message)];
    }
    this.nextMemo.set(key, result);
    return result;
  }
}

function invalidResource(kind: ResourceKind, name: string, message: string): Diagnostic {
  return {
    severity: 'error',
    reason: 'InvalidResource',
    object: { kind: `Envoy ${kind}`, namespace: '', name },
    path: [],
    message: `not served: ${message}`,
  };
}
