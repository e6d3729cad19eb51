// A node view's resources, validated and encoded once. Encodings are shared across views and across
// rebuilds: a per-tunnel resource of a tunnel object already seen (owner and piece), an object seen
// before (same identity, see translate/memo.ts) or an assembled one with the same parts (same key) is
// never built, validated or encoded again.
import { encodeResource, contentVersion, jsonHash, type EncodedResource } from '../envoy/encode.js';
import { fromEnvoyJson } from '../envoy/json.js';
import { lookupType, messageNameOf, TypeUrl, type ResourceKind } from '../envoy/protos.js';
import { validateMessage } from '../envoy/validate.js';
import type { Diagnostic } from '../model/diagnostics.js';
import { objectOf, type NamedResource, type Translation } from '../translate/resources.js';
import type { ServedType } from './watch.js';
import { errorMessage } from '../errors.js';

/** One step that led to a TypeSnapshot: the names added, changed or removed since generation `since`. */
interface ChangeStep {
  since: number;
  names: ReadonlySet<string>;
}

/** What changedSince answers for a snapshot's own generation. */
const noChanges: ReadonlySet<string> = new Set();

/**
 * How many steps a TypeSnapshot remembers. A stream further behind looks at every name, which costs a
 * stream of 1,000 endpoints 1,000 lookups; at 20 changes/s with make-before-break (2-3 generations per
 * change) 8 steps were 150 ms, and slow readers fell behind them: more work exactly when busiest.
 */
const changeHistory = 64;
/** Shared values kept per TypeSnapshot (see ServedType.shared). */
const maxShared = 64;

/** One type of a view's resources, as built by ResourceEncoder: what the server reads (ServedType). */
export class TypeSnapshot implements ServedType {
  readonly version: string;
  /** Set by the cache: kept across rebuilds that leave the type unchanged. */
  changedAt?: number;
  /** Made on first use, for every stream of the view; they go with this snapshot. */
  private versionMap?: Map<string, string>;
  private coverage?: WeakMap<ReadonlySet<string>, boolean>;
  private sharedValues?: Map<string, unknown>;
  private sharedCount = 0;

  constructor(
    readonly resources: ReadonlyMap<string, EncodedResource>,
    /** Sum of the entries' hashes (mod 2^64), which `version` shows: updated per changed name, not recomputed. */
    readonly sum: bigint,
    readonly generation: number,
    /** The last few steps that led here, oldest first (also when a stream skipped a generation or two). */
    private readonly steps: readonly ChangeStep[] = [],
  ) {
    this.version = versionOf(sum);
  }

  /** The snapshot after this one when `names` changed. */
  next(
    resources: ReadonlyMap<string, EncodedResource>,
    names: ReadonlySet<string>,
    sum: bigint,
    generation: number,
  ): TypeSnapshot {
    const steps = [...this.steps.slice(1 - changeHistory), { since: this.generation, names }];
    return new TypeSnapshot(resources, sum, generation, steps);
  }

  changedSince(generation: number): ReadonlySet<string> | undefined {
    if (generation === this.generation) return noChanges;
    const steps = this.steps;
    for (let i = steps.length - 1; i >= 0; i--) {
      if (steps[i]!.since !== generation) continue;
      if (i === steps.length - 1) return steps[i]!.names;
      const names = new Set<string>();
      for (const step of steps.slice(i)) for (const name of step.names) names.add(name);
      return names;
    }
    return undefined;
  }

  versions(): ReadonlyMap<string, string> {
    if (!this.versionMap) {
      this.versionMap = new Map();
      for (const [name, r] of this.resources) this.versionMap.set(name, r.version);
    }
    return this.versionMap;
  }

  coveredBy(names: ReadonlySet<string>): boolean {
    this.coverage ??= new WeakMap();
    let answer = this.coverage.get(names);
    if (answer === undefined) {
      answer = names.size >= this.resources.size;
      for (const name of this.resources.keys()) if (!(answer &&= names.has(name))) break;
      this.coverage.set(names, answer);
    }
    return answer;
  }

  shared<T>(key: string, build: (id: string) => T): T {
    this.sharedValues ??= new Map();
    if (this.sharedValues.has(key)) return this.sharedValues.get(key) as T;
    const value = build(`${this.generation}.${++this.sharedCount}`);
    if (this.sharedValues.size < maxShared) this.sharedValues.set(key, value);
    return value;
  }
}

export type Snapshot = Record<ResourceKind, TypeSnapshot>;

export interface BuiltSnapshot {
  snapshot: Snapshot;
  diagnostics: Diagnostic[];
}

const kinds: ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint', 'extension', 'secret'];

// Module-level, yet invisible: a pure function of an encoding, which is never modified.
const entryHashes = new WeakMap<EncodedResource, bigint>();

/** 64 bits naming one (name, content) pair; an encoding is shared, so this is computed once per encoding. */
function entryHash(e: EncodedResource): bigint {
  let h = entryHashes.get(e);
  if (h === undefined) {
    h = BigInt(`0x${contentVersion(e.name, '\n', e.version)}`);
    entryHashes.set(e, h);
  }
  return h;
}

const mask64 = (1n << 64n) - 1n;

/**
 * The version of a set of resources, as sent in `version_info`: the sum of its entries' hashes, so a
 * change of one name updates it in O(1) (equal sets always give equal versions; a different set gives
 * a different one but with probability 2^-64).
 */
function versionOf(sum: bigint): string {
  return sum.toString(16).padStart(16, '0');
}

type Encoded = EncodedResource | Diagnostic[];

export class ResourceEncoder {
  /** Encodings by translated object: an object that lives on (memoised translation) keeps its bytes. */
  private byObject = new WeakMap<object, Encoded>();
  /** Encodings of per-tunnel resources, by tunnel object and piece: they live exactly as long as the tunnel. */
  private byPiece = new WeakMap<object, Map<string, Encoded>>();
  /**
   * The translation each type snapshot was built from, when every entry of it was served (no invalid
   * resource, no name twice): the next build compares entries by identity and looks only at those
   * that differ.
   */
  private sources = new WeakMap<TypeSnapshot, readonly NamedResource[]>();
  /** How many resources were validated and encoded (not served from a memo): for tests and benchmarks. */
  encodeCount = 0;
  /** Called for every real encode (not a memo hit): lets a test see exactly what was encoded. */
  onEncode?: (kind: ResourceKind, name: string) => void;
  /** The last generation given to a TypeSnapshot of this encoder. */
  private generations = 0;

  /**
   * Builds a view's snapshot from its translation. With `previous`, unchanged types keep their
   * TypeSnapshot (same object, same generation) and changed ones record which names changed.
   */
  build(translation: Translation, previous?: Snapshot): BuiltSnapshot {
    const { resources } = translation;
    const diagnostics = [...translation.diagnostics];
    const snapshot = {} as Snapshot;
    for (const kind of kinds) {
      const prior = previous?.[kind];
      const list = resources[kind];
      const same = prior && this.stepByIdentity(kind, prior, list);
      if (same) {
        snapshot[kind] = same;
        continue;
      }
      const map = new Map<string, EncodedResource>();
      // Changed names are found in this one pass: an entry whose encoding is the prior one's is unchanged.
      const changed = new Set<string>();
      let sum = prior?.sum ?? 0n;
      let kept = 0;
      for (const resource of resources[kind]) {
        const name = resource.name;
        const known = prior?.resources.get(name);
        const encoded =
          (known && resource.key !== undefined && known.key === resource.key ? known : undefined) ??
          this.encodingOf(kind, resource, known);
        if (Array.isArray(encoded)) {
          diagnostics.push(...encoded);
          continue;
        }
        if (map.has(name)) continue;
        map.set(name, encoded);
        if (known) kept++;
        if (known === encoded || known?.version === encoded.version) continue;
        changed.add(name);
        if (known) sum -= entryHash(known);
        sum += entryHash(encoded);
      }
      // Every prior name still present was counted in `kept`; any other prior name was removed.
      if (prior && kept < prior.resources.size) {
        for (const [name, old] of prior.resources) {
          if (map.has(name)) continue;
          changed.add(name);
          sum -= entryHash(old);
        }
      }
      sum &= mask64;
      snapshot[kind] = !prior
        ? new TypeSnapshot(map, sum, ++this.generations)
        : changed.size === 0
          ? prior
          : prior.next(map, changed, sum, ++this.generations);
      if (map.size === list.length) this.sources.set(snapshot[kind], list);
    }
    return { snapshot, diagnostics };
  }

  /**
   * The usual change touches a few tunnels of many: when the translation lists the same names in the
   * same order as the one `prior` was built from, entries that are the very same objects are
   * unchanged, and only the others are looked at. Undefined when that does not apply (names added,
   * removed or moved; an entry that does not encode): the full pass then runs.
   */
  private stepByIdentity(
    kind: ResourceKind,
    prior: TypeSnapshot,
    list: readonly NamedResource[],
  ): TypeSnapshot | undefined {
    const before = this.sources.get(prior);
    if (!before || before.length !== list.length) return undefined;
    const differs: number[] = [];
    for (let i = 0; i < list.length; i++) {
      if (list[i] === before[i]) continue;
      if (list[i]!.name !== before[i]!.name) return undefined;
      differs.push(i);
    }
    const updates: [string, EncodedResource][] = [];
    for (const i of differs) {
      const resource = list[i]!;
      const known = prior.resources.get(resource.name)!;
      const encoded =
        resource.key !== undefined && known.key === resource.key ? known : this.encodingOf(kind, resource, known);
      if (Array.isArray(encoded)) return undefined;
      if (encoded !== known && encoded.version !== known.version) updates.push([resource.name, encoded]);
    }
    let next = prior;
    if (updates.length > 0) {
      const map = new Map(prior.resources);
      let sum = prior.sum;
      for (const [name, encoded] of updates) {
        sum += entryHash(encoded) - entryHash(map.get(name)!);
        map.set(name, encoded);
      }
      next = prior.next(map, new Set(updates.map(([name]) => name)), sum & mask64, ++this.generations);
    }
    this.sources.set(next, list);
    return next;
  }

  /** The known encoding of a resource, or a new one; per-tunnel resources are built only on a miss. */
  private encodingOf(kind: ResourceKind, resource: NamedResource, known: EncodedResource | undefined): Encoded {
    const { owner, piece } = resource;
    let pieces: Map<string, Encoded> | undefined;
    if (owner && piece !== undefined) {
      pieces = this.byPiece.get(owner);
      const found = pieces?.get(piece);
      if (found) return found;
    } else if (typeof resource.object !== 'function') {
      const found = this.byObject.get(resource.object);
      if (found) return found;
    }
    const object = objectOf(resource);
    const encoded =
      this.sameContent(known, object, resource.key) ?? this.encode(kind, resource.name, object, resource.key);
    if (owner && piece !== undefined) {
      if (!pieces) this.byPiece.set(owner, (pieces = new Map()));
      pieces.set(piece, encoded);
    } else {
      this.byObject.set(object, encoded);
    }
    return encoded;
  }

  /**
   * For resources built anew (a changed tunnel's, relays, splits): the previous encoding of the same
   * name, if the JSON it was made from is equal (by hash), so equal content is not encoded again.
   */
  private sameContent(
    known: EncodedResource | undefined,
    object: Record<string, unknown>,
    key: string | undefined,
  ): EncodedResource | undefined {
    if (!known || key !== undefined) return undefined;
    return known.jsonHash === jsonHash(object) ? known : undefined;
  }

  private encode(kind: ResourceKind, name: string, object: Record<string, unknown>, key?: string): Encoded {
    this.encodeCount++;
    this.onEncode?.(kind, name);
    const typeUrl = TypeUrl[kind];
    let result: Encoded;
    try {
      const protoForm = fromEnvoyJson(lookupType(messageNameOf(typeUrl)), object);
      const violations = validateMessage(messageNameOf(typeUrl), protoForm);
      result =
        violations.length > 0
          ? violations.map((v) => invalidResource(kind, name, `${v.path} ${v.message}`))
          : encodeResource(typeUrl, name, protoForm, object, key);
    } catch (err) {
      result = [invalidResource(kind, name, errorMessage(err))];
    }
    this.byObject.set(object, result);
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
