// The rollout stage (src/cache/rollout-stage.ts) between the pipeline and the cache: an ACK that lets a
// hold end ends it on the next turn of the event loop, an ACK that does not hands nothing new to the
// cache, and a terminator that holds or leaves ends what waited for it at once, not on the next poll.
import { describe, expect, it } from 'vitest';
import type { NodeView } from '../../src/envoy/node-view.js';
import type { Model, Tunnel } from '../../src/model/tunnel.js';
import type { SnapshotCache } from '../../src/cache/cache.js';
import { RolloutStage, type ConnectedNode } from '../../src/cache/rollout-stage.js';
import { tunnel } from '../helpers/tunnels.js';

/** An Envoy whose answer to "do you hold your view" the test sets. */
class FakeNode implements ConnectedNode {
  holds = false;
  constructor(
    readonly node: { id: string; view: NodeView },
    private readonly content: () => unknown,
  ) {}
  holdsView(): boolean {
    return this.holds;
  }
  snapshot(): unknown {
    return this.content();
  }
}

function setUp() {
  const handed: Record<string, Model>[] = [];
  const cache = { setModels: (m: Record<string, Model>) => handed.push(m) } as unknown as SnapshotCache;
  const content = () => handed.length;
  const terminator = new FakeNode(
    { id: 't', view: { role: 'terminate', listenAddress: '10.0.0.2' } as NodeView },
    content,
  );
  const originators = Array.from(
    { length: 3 },
    (_, i) => new FakeNode({ id: `o${i}`, view: { role: 'originate' } as NodeView }, content),
  );
  const streams = new Set<ConnectedNode>([terminator, ...originators]);
  const stage = new RolloutStage(cache, () => streams, { timeoutMs: 60_000, withdrawGraceMs: 0 });
  const model = (t: Tunnel): Model => ({ tunnels: [t] }) as unknown as Model;
  const shown = () => handed.at(-1)!.originate!.tunnels[0]!.endpoints.map((e) => e.address);
  const turn = () => new Promise((resolve) => setImmediate(resolve));
  return { stage, handed, terminator, originators, streams, model, shown, turn };
}

describe('rollout stage: what ACKs, connects and disconnects do', () => {
  it('ends a hold on the ACK that completes it, and hands the cache nothing for ACKs that do not', async () => {
    const { stage, handed, terminator, originators, model, shown, turn } = setUp();
    stage.setModel(model(tunnel('db', '10.0.0.1')));
    for (const o of originators) o.holds = true;
    stage.setModel(model(tunnel('db', '10.0.0.2')));
    expect(stage.holds().map((h) => [h.phase, h.address])).toEqual([['announce', '10.0.0.2']]);
    expect(shown()).toEqual(['10.0.0.1']);
    const before = handed.length;

    // Originators answering cannot end an announce: nothing new is derived or handed over.
    for (const o of originators) stage.poke(o);
    await turn();
    expect(handed.length).toBe(before);
    expect(stage.holds()).toHaveLength(1);

    terminator.holds = true;
    stage.poke(terminator);
    await turn();
    expect(shown()).toEqual(['10.0.0.2']);
    expect(stage.holds().map((h) => [h.phase, h.address])).toEqual([['withdraw', '10.0.0.1']]);
    stage.stop();
  });

  it('a terminator already holding the revision a hold made ends it on the next turn, unasked', async () => {
    const { stage, terminator, originators, model, shown, turn } = setUp();
    stage.setModel(model(tunnel('db', '10.0.0.1')));
    for (const o of originators) o.holds = true;
    terminator.holds = true;
    stage.setModel(model(tunnel('db', '10.0.0.2')));
    expect(shown()).toEqual(['10.0.0.1']);
    await turn();
    expect(shown()).toEqual(['10.0.0.2']);
    stage.stop();
  });

  it('a terminator that disconnects releases what waited for it on the next turn, not the poll', async () => {
    const { stage, terminator, originators, streams, model, shown, turn } = setUp();
    stage.setModel(model(tunnel('db', '10.0.0.1')));
    for (const o of originators) o.holds = true;
    stage.setModel(model(tunnel('db', '10.0.0.2')));
    expect(shown()).toEqual(['10.0.0.1']);
    streams.delete(terminator);
    stage.poke();
    await turn();
    expect(shown()).toEqual(['10.0.0.2']);
    stage.stop();
  });
});
