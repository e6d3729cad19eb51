// The load generator: its own process, N ADS streams (state of the world or delta) that act like
// Envoys: each names its node and role, subscribes to CDS and LDS (wildcard), then to the endpoints
// of every EDS cluster and the routes its listeners name, and ACKs every response at once with its
// nonce. Responses are read only as far as needed (wire.ts), requests are written from cached bytes,
// and gRPC is spoken directly over node:http2 (length-prefixed messages; a gRPC library's per-message
// machinery cost this process more than reading the responses), so the generator stays cheap; it
// reports its own CPU so a reader can check it was not the bottleneck. Driven over IPC by
// bench/convergence.ts.
import http2 from 'node:http2';
import protobuf from 'protobufjs';
import { lookupType, TypeUrl } from '../src/envoy/protos.js';
import { Tracker } from './watches.js';
import { clusterOf, eachDeltaResource, eachResource, readResponse, type Light } from './wire.js';

const now = () => performance.timeOrigin + performance.now();

export interface StreamSpec {
  id: string;
  role: 'originate' | 'terminate';
  listenAddress?: string;
  /**
   * The soak's misbehaving Envoys (bench/soak.ts): `reconnect` closes its stream and opens a new one
   * every 0.2-1 s; `slow` has a 64 KiB window and reads one chunk per 100 ms.
   */
  behaviour?: 'reconnect' | 'slow';
}

const adsPath = (delta: boolean) =>
  `/envoy.service.discovery.v3.AggregatedDiscoveryService/${delta ? 'Delta' : 'Stream'}AggregatedResources`;

/**
 * Envoy advertises large HTTP/2 windows (256 MiB by default); 64 KiB would make a 0.3 MB response wait for
 * window updates.
 */
const window = 16 * 1024 * 1024;

/** One Envoy's connection: HTTP/2 to the server with Envoy-sized windows. */
async function connectEnvoy(address: string, slow = false): Promise<http2.ClientHttp2Session> {
  if (slow) {
    const session = http2.connect(`http://${address}`);
    session.on('error', () => {});
    await new Promise<void>((resolve, reject) => session.once('connect', () => resolve()).once('error', reject));
    return session;
  }
  const session = http2.connect(`http://${address}`, { settings: { initialWindowSize: window } });
  session.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  session.setLocalWindowSize(window);
  return session;
}

/** One gRPC bidirectional stream: each message is written and read with its 5-byte length prefix. */
class GrpcStream {
  private readonly stream: http2.ClientHttp2Stream;
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(session: http2.ClientHttp2Session, path: string, onMessage: (message: Buffer) => void, slow = false) {
    this.stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    this.stream.on('error', () => {});
    this.stream.on('data', (chunk: Buffer) => {
      if (slow) {
        this.stream.pause();
        setTimeout(() => this.stream.resume(), 100).unref();
      }
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      // Concatenated once a whole message is in, not on every chunk (a first response is ~1 MB).
      while (this.buffered >= 5) {
        const head = this.chunks[0]!.length >= 5 ? this.chunks[0]! : Buffer.concat(this.chunks);
        const length = head.readUInt32BE(1);
        if (this.buffered < 5 + length) return;
        const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
        onMessage(all.subarray(5, 5 + length));
        const rest = all.subarray(5 + length);
        this.chunks = rest.length ? [rest] : [];
        this.buffered = rest.length;
      }
    });
  }

  /** One gRPC message made of `parts` (written as they are: a SotW ACK's 30 KB of names is not copied). */
  write(...parts: Uint8Array[]): void {
    const head = Buffer.allocUnsafe(5);
    head[0] = 0;
    head.writeUInt32BE(
      parts.reduce((length, part) => length + part.length, 0),
      1,
    );
    this.stream.cork();
    this.stream.write(head);
    for (const part of parts) if (part.length > 0) this.stream.write(part);
    this.stream.uncork();
  }

  close(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }
}

const routeName = /terminate\/\d+(?:\/[0-9.]+)?/g;
const latin1 = new TextDecoder('latin1');

/**
 * The node's view, as servers group nodes (role and listen address here). Versions are unique only
 * within a view: a LinearCache counts per view and type, so two views both have a CDS version "1".
 */
const viewOf = (s: StreamSpec) => `${s.role}|${s.listenAddress ?? ''}`;

function nodeOf(s: StreamSpec) {
  const metadata: Record<string, string> = { 'tunnel-shim.io/role': s.role };
  if (s.listenAddress) metadata['tunnel-shim.io/listen-address'] = s.listenAddress;
  return {
    id: s.id,
    cluster: `bench-${s.role}`,
    metadata: { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v }])) },
  };
}

const sotwRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const deltaRequest = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const namesField = sotwRequest.fields.resource_names!.id;
const noNames = new Uint8Array(0);

class EnvoyLike {
  bytes = 0;
  responses = 0;
  lastAckAt = 0;
  firstAt = 0;
  private first = true;
  private readonly call: GrpcStream;
  readonly view: string;
  private readonly eds = new Set<string>();
  /** SotW: the CDS version whose EDS clusters this stream subscribes to. */
  private cdsVersion = '';
  private readonly rds = new Set<string>();
  /** SotW: resource_names bytes per type, rebuilt only when the subscription changes. */
  private readonly namesBytes = new Map<string, Uint8Array>();
  /** SotW: the last nonce and version per type, which Envoy repeats when its subscription changes. */
  private readonly last = new Map<string, { nonce: string; version: string }>();

  constructor(
    session: http2.ClientHttp2Session,
    readonly spec: StreamSpec,
    readonly delta: boolean,
    private readonly onResponse: (e: EnvoyLike, raw: Buffer, r: Light) => void,
  ) {
    this.view = viewOf(spec);
    this.call = new GrpcStream(session, adsPath(delta), (raw) => this.receive(raw), spec.behaviour === 'slow');
    this.request(TypeUrl.cluster, {});
    this.request(TypeUrl.listener, {});
  }

  close() {
    this.call.close();
  }

  private request(
    typeUrl: string,
    r: { nonce?: string; version?: string; subscribe?: string[]; unsubscribe?: string[] },
  ) {
    const node = this.first ? nodeOf(this.spec) : undefined;
    this.first = false;
    if (this.delta) {
      const bytes = deltaRequest
        .encode(
          deltaRequest.fromObject({
            node,
            type_url: typeUrl,
            response_nonce: r.nonce ?? '',
            resource_names_subscribe: r.subscribe ?? [],
            resource_names_unsubscribe: r.unsubscribe ?? [],
          }),
        )
        .finish();
      this.call.write(bytes);
      return;
    }
    // Fields in number order, as Envoy writes them; the (cached) names are written as they are.
    const head = sotwRequest.encode(sotwRequest.fromObject({ node, version_info: r.version ?? '' })).finish();
    const tail = sotwRequest
      .encode(sotwRequest.fromObject({ type_url: typeUrl, response_nonce: r.nonce ?? '' }))
      .finish();
    this.call.write(head, this.namesBytes.get(typeUrl) ?? noNames, tail);
  }

  private setNames(typeUrl: string, names: Set<string>) {
    this.namesBytes.set(typeUrl, encodeNames(names));
  }

  private receive(raw: Buffer) {
    this.bytes += raw.length;
    this.responses++;
    this.firstAt ||= now();
    const r = readResponse(raw, this.delta);
    this.onResponse(this, raw, r);
    if (!this.delta) this.last.set(r.typeUrl, { nonce: r.nonce, version: r.version });
    if (r.typeUrl === TypeUrl.cluster) this.onClusters(raw, r);
    else if (r.typeUrl === TypeUrl.listener && this.spec.role === 'terminate') this.onListeners(raw, r);
    this.request(r.typeUrl, { nonce: r.nonce, version: r.version });
    this.lastAckAt = now();
  }

  /** Like Envoy: the endpoints of every EDS cluster are subscribed to once the clusters arrive. */
  private onClusters(raw: Buffer, r: Light) {
    if (this.delta) {
      // Only what this response names: not a copy of 1,000 names per response.
      const subscribe = r.names.filter(
        (name, i) => !this.eds.has(name) && edsOfResource(this.view, raw, r.versions[i]!, name),
      );
      const unsubscribe = r.removed.filter((name) => this.eds.has(name));
      for (const name of subscribe) this.eds.add(name);
      for (const name of unsubscribe) this.eds.delete(name);
      if (subscribe.length > 0 || unsubscribe.length > 0) this.request(TypeUrl.endpoint, { subscribe, unsubscribe });
      return;
    }
    // SotW: every stream moves between the same CDS versions; the new EDS names are worked out once.
    const move = edsMove(this.view, this.cdsVersion, raw, r.version);
    this.cdsVersion = r.version;
    if (!move) return;
    this.namesBytes.set(TypeUrl.endpoint, move);
    this.request(TypeUrl.endpoint, { ...this.last.get(TypeUrl.endpoint) });
  }

  private onListeners(raw: Buffer, r: Light) {
    const next = new Set<string>(this.delta ? this.rds : []);
    for (const m of latin1.decode(raw).matchAll(routeName)) next.add(m[0]);
    if (this.delta) for (const name of r.removed) next.delete(name);
    this.follow(TypeUrl.route, this.rds, next);
  }

  private follow(typeUrl: string, current: Set<string>, next: Set<string>) {
    const added = [...next].filter((n) => !current.has(n));
    const removed = [...current].filter((n) => !next.has(n));
    if (added.length === 0 && removed.length === 0) return;
    current.clear();
    for (const n of next) current.add(n);
    if (this.delta) this.request(typeUrl, { subscribe: added, unsubscribe: removed });
    else {
      this.setNames(typeUrl, current);
      this.request(typeUrl, { ...this.last.get(typeUrl) });
    }
  }
}

/**
 * Which clusters are EDS clusters, read once per view and version rather than per stream (without this
 * the generator parsed 1,000 clusters per stream). A version names one content only within a view: the
 * shim and the snapshot cache hash content, but a LinearCache counts per view and type, and keyed by
 * version alone the originators took a terminator view's CDS "1" (no EDS clusters) for their own, never
 * subscribed to endpoints, and so missed every change.
 */
const edsByStateVersion = new Map<string, string[]>();
const edsByResourceVersion = new Map<string, boolean>();

function edsOfState(view: string, raw: Buffer, version: string): string[] {
  const key = `${view}|${version}`;
  let names = edsByStateVersion.get(key);
  if (!names) {
    const found: string[] = [];
    eachResource(raw, (any) => {
      const c = clusterOf(any);
      if (c.eds) found.push(c.name);
    });
    edsByStateVersion.set(key, (names = found));
  }
  return names;
}

/** resource_names bytes, sorted as Envoy sends them. */
function encodeNames(names: Iterable<string>): Uint8Array {
  const w = protobuf.Writer.create();
  for (const n of [...names].sort()) w.uint32((namesField << 3) | 2).string(n);
  return w.finish();
}

/** SotW: from CDS version `from` to `to`, the new EDS subscription's bytes, or null when it is the same. */
const edsMoves = new Map<string, Uint8Array | null>();

function edsMove(view: string, from: string, raw: Buffer, to: string): Uint8Array | null {
  const key = `${view}|${from}>${to}`;
  let move = edsMoves.get(key);
  if (move === undefined) {
    const before = new Set(from ? edsByStateVersion.get(`${view}|${from}`) : []);
    const after = edsOfState(view, raw, to);
    const same = after.length === before.size && after.every((name) => before.has(name));
    move = same ? null : encodeNames(after);
    edsMoves.set(key, move);
  }
  return move;
}

function edsOfResource(view: string, raw: Buffer, version: string, name: string): boolean {
  const key = `${view}|${name}|${version}`;
  if (!edsByResourceVersion.has(key)) {
    eachDeltaResource(raw, (v, any) => {
      const c = clusterOf(any);
      edsByResourceVersion.set(`${view}|${c.name}|${v}`, c.eds);
    });
  }
  return edsByResourceVersion.get(key) ?? false;
}

const streams: EnvoyLike[] = [];
const sessions: http2.ClientHttp2Session[] = [];
let lastResponseAt = 0;
let connectStart = 0;
let connectedAt = 0;
let bytesMark = new Map<EnvoyLike, number>();

/** The soak changes endpoints for as long as it runs and watches none: it turns change tracking off. */
let trackMarkers = true;
const reconnectTimers = new Set<NodeJS.Timeout>();
let originateCount = 0;
const tracker = new Tracker(
  () => originateCount,
  (m) => process.send!(m),
);
const kindOf = (typeUrl: string) =>
  typeUrl === TypeUrl.cluster ? 'cluster' : typeUrl === TypeUrl.listener ? 'listener' : undefined;

function onResponse(e: EnvoyLike, raw: Buffer, r: Light) {
  lastResponseAt = now();
  if (!trackMarkers || e.spec.role !== 'originate') return;
  const type = kindOf(r.typeUrl);
  // A SotW CDS or LDS response is the full state: equal versions (and lengths) are equal bytes.
  const contentKey = !e.delta && type ? `${e.view}|${r.typeUrl}|${r.version}|${raw.length}` : undefined;
  tracker.onResponse(e, raw, type, e.delta ? r.removed : undefined, lastResponseAt, contentKey);
}

process.on('message', async (m: any) => {
  if (m.cmd === 'connect') {
    // First every Envoy's connection (TCP + HTTP/2, as Envoys that are already up have), then every
    // stream at once. One process stands in for 1,000 Envoys: opening connections while it is busy
    // reading responses would make the later Envoys wait on this process, not on the server.
    connectStart = now();
    // Each Envoy has its own connection; opened 50 at a time.
    const fresh: http2.ClientHttp2Session[] = [];
    const open = (s: StreamSpec) => connectEnvoy(m.address, s.behaviour === 'slow');
    for (let i = 0; i < m.streams.length; i += 50)
      fresh.push(...(await Promise.all(m.streams.slice(i, i + 50).map(open))));
    connectedAt = now();
    const start = now();
    trackMarkers = m.trackMarkers ?? true;
    for (let i = 0; i < fresh.length; i++) {
      const spec: StreamSpec = m.streams[i];
      streams.push(new EnvoyLike(fresh[i]!, spec, m.delta, onResponse));
      sessionOf.push(fresh[i]!);
      reconnectOnGoaway(streams.length - 1, m.address, m.delta);
      if (spec.behaviour === 'reconnect') reconnectForever(streams.length - 1, m.delta);
    }
    sessions.push(...fresh);
    originateCount = streams.filter((s) => s.spec.role === 'originate').length;
    process.send!({ cmd: 'connected', start, connectMs: connectedAt - connectStart });
  } else if (m.cmd === 'quiet') {
    // Resolves once no response arrived for `ms`: the last ACK then ends the sync.
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      // Every stream answered at least for clusters and listeners, then silence: a server that is still
      // building a view (10,000 Services) is not mistaken for one that is done.
      if (lastResponseAt > 0 && now() - lastResponseAt >= m.ms && streams.every((e) => e.responses >= 2)) break;
    }
    const lastAck = Math.max(...streams.map((s) => s.lastAckAt));
    if (process.env.BENCH_TRACE) {
      const at = (xs: number[], q: number) => xs.sort((a, b) => a - b)[Math.floor(q * (xs.length - 1))]! - connectedAt;
      const first = streams.map((s) => s.firstAt);
      const last = streams.map((s) => s.lastAckAt);
      process.stderr.write(
        `loadgen: connections up in ${(connectedAt - connectStart).toFixed(0)} ms; after the streams opened: ` +
          `first response p50 +${at(first, 0.5).toFixed(0)} max +${at(first, 1).toFixed(0)}; last ACK p50 ` +
          `+${at(last, 0.5).toFixed(0)} max +${at(last, 1).toFixed(0)} ms\n`,
      );
    }
    process.send!({ cmd: 'quiet', lastAck, withResponses: streams.filter((s) => s.responses > 0).length });
  } else if (m.cmd === 'watch') {
    tracker.watch(m);
  } else if (m.cmd === 'unwatch') {
    process.send!({ cmd: 'unwatched', marker: m.marker, seen: tracker.unwatch(m.marker) });
  } else if (m.cmd === 'markBytes') {
    bytesMark = new Map(streams.map((s) => [s, s.bytes]));
  } else if (m.cmd === 'bytes') {
    const deltas = streams.filter((s) => s.spec.role === 'originate').map((s) => s.bytes - (bytesMark.get(s) ?? 0));
    process.send!({ cmd: 'bytes', perStream: deltas.reduce((a, b) => a + b, 0) / Math.max(1, deltas.length) });
  } else if (m.cmd === 'reconnects') {
    process.send!({ cmd: 'reconnects', count: reconnects });
  } else if (m.cmd === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ cmd: 'cpu', seconds: (u.user + u.system) / 1e6 });
  } else if (m.cmd === 'close') {
    closing = true;
    for (const t of reconnectTimers) clearTimeout(t);
    for (const s of streams) s.close();
    for (const session of sessions) session.close();
    process.send!({ cmd: 'closed' });
    setTimeout(() => process.exit(0), 100);
  }
});

let reconnects = 0;

/** Each stream's current connection (replaced after a GOAWAY). */
const sessionOf: http2.ClientHttp2Session[] = [];
let closing = false;

/**
 * As an Envoy does when the server asks it to go (GOAWAY at --max-connection-age, 30 min ± 10 %): a new
 * connection and a new stream on it. Without this a soak past 27 minutes lost its streams.
 */
function reconnectOnGoaway(i: number, address: string, delta: boolean): void {
  sessionOf[i]!.once('goaway', async () => {
    const spec = streams[i]!.spec;
    const fresh = await connectEnvoy(address, spec.behaviour === 'slow').catch(() => undefined);
    if (!fresh || closing) return void fresh?.close();
    streams[i]!.close();
    streams[i] = new EnvoyLike(fresh, spec, delta, onResponse);
    sessions.push(fresh);
    sessionOf[i] = fresh;
    reconnectOnGoaway(i, address, delta);
  });
}

/** Replaces stream `i` by a fresh one on its connection every 0.2-1 s, until `close`. */
function reconnectForever(i: number, delta: boolean): void {
  const timer = setTimeout(
    () => {
      reconnectTimers.delete(timer);
      const session = sessionOf[i]!;
      // After a GOAWAY no new stream may start on it; reconnectOnGoaway is replacing the connection.
      if (!session.closed && !session.destroyed) {
        const old = streams[i]!;
        old.close();
        streams[i] = new EnvoyLike(session, old.spec, delta, onResponse);
        reconnects++;
      }
      reconnectForever(i, delta);
    },
    200 + Math.random() * 800,
  );
  reconnectTimers.add(timer);
}

process.send!({ cmd: 'ready' });
