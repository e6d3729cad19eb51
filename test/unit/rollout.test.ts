// Make-before-break as a pure decision (src/cache/rollout.ts): what originators may see and what
// terminators must keep, step by step, from what the Envoys hold.
import { describe, expect, it } from 'vitest';
import type { Tunnel } from '../../src/model/tunnel.js';
import {
  deriveSides,
  emptyRollout,
  stepRollout,
  type Peer,
  type RolloutInput,
  type RolloutState,
} from '../../src/cache/rollout.js';
import { tunnel } from '../helpers/tunnels.js';

const T = (id: string, synced: number, address?: string): Peer => ({ id, address, synced });
const O = (id: string, synced: number): Peer => ({ id, synced });
const timeoutMs = 5000;

/** Runs steps, each with its own peers and time; returns each step's sides and settled holds. */
/** Terminators' endpoints over five steps of a move: both while the move is held, then only the new one. */
const keptThreeStepsThenWithdrawn = [
  ['10.0.0.1'],
  ['10.0.0.1', '10.0.0.2'],
  ['10.0.0.1', '10.0.0.2'],
  ['10.0.0.1', '10.0.0.2'],
  ['10.0.0.2'],
];

function run(steps: (Partial<RolloutInput> & { target: Tunnel[] })[]) {
  let state: RolloutState = emptyRollout;
  let revision = 0;
  return steps.map((s) => {
    const out = stepRollout(state, {
      terminators: [],
      originators: [],
      now: 0,
      timeoutMs,
      revision: revision + 1,
      ...s,
    });
    state = out.state;
    revision++;
    const sides = deriveSides(s.target, state);
    const addresses = (list: readonly Tunnel[]) =>
      Object.fromEntries(list.map((t) => [t.key, t.endpoints.map((e) => e.address)]));
    return {
      originate: addresses(sides.originate),
      terminate: addresses(sides.terminate),
      settled: out.settled,
      sides,
    };
  });
}

describe('make-before-break decisions', () => {
  const a = tunnel('db', '10.0.0.1');
  const moved = tunnel('db', '10.0.0.2');

  it('announces at once when no terminator serves the address', () => {
    const [first] = run([{ target: [a], terminators: [T('t2', -1, '10.0.0.2')] }]);
    expect(first!.originate).toEqual({ db: ['10.0.0.1'] });
    expect(first!.sides.originate[0]).toBe(a);
  });

  it.each([
    ['a terminator bound to the address', T('t', 1, '10.0.0.2')],
    ['an unbound terminator', T('t', 1)],
    ['a terminator on the any-address', T('t', 1, '0.0.0.0')],
  ])(
    'on a move, shows the new endpoint to originators once %s holds it, and only then withdraws the old one',
    (_, peer) => {
      const steps = run([
        { target: [a] },
        { target: [moved], terminators: [peer], originators: [O('o', 1)] }, // revision 2 shows 10.0.0.2 to terminators
        { target: [moved], terminators: [{ ...peer, synced: 1 }], originators: [O('o', 2)] },
        // revision 4: the withdrawal
        { target: [moved], terminators: [{ ...peer, synced: 2 }], originators: [O('o', 2)], now: 30 },
        { target: [moved], terminators: [{ ...peer, synced: 4 }], originators: [O('o', 4)], now: 40 },
      ]);
      expect(steps.map((s) => s.originate.db)).toEqual([
        ['10.0.0.1'],
        ['10.0.0.1'],
        ['10.0.0.1'],
        ['10.0.0.2'],
        ['10.0.0.2'],
      ]);
      expect(steps.map((s) => s.terminate.db)).toEqual(keptThreeStepsThenWithdrawn);
      expect(steps[3]!.settled).toEqual([
        { phase: 'announce', tunnel: 'db', address: '10.0.0.2', heldMs: 30, timedOut: false },
      ]);
      expect(steps[4]!.settled).toEqual([
        { phase: 'withdraw', tunnel: 'db', address: '10.0.0.1', heldMs: 10, timedOut: false },
      ]);
      expect(steps[4]!.sides.terminate[0]).toBe(moved);
      expect(steps[4]!.sides.originate[0]).toBe(moved);
    },
  );

  it('keeps a withdrawn endpoint on terminators until every originator holds the withdrawal', () => {
    const steps = run([
      { target: [a] },
      { target: [moved], originators: [O('o1', 1), O('o2', 1)] },
      { target: [moved], originators: [O('o1', 2), O('o2', 1)] },
      { target: [moved], originators: [O('o1', 2), O('o2', 2)], now: 12 },
    ]);
    expect(steps[1]!.originate).toEqual({ db: ['10.0.0.2'] });
    expect(steps[1]!.terminate).toEqual({ db: ['10.0.0.1', '10.0.0.2'] });
    expect(steps[2]!.terminate).toEqual({ db: ['10.0.0.1', '10.0.0.2'] });
    expect(steps[3]!.terminate).toEqual({ db: ['10.0.0.2'] });
    expect(steps[3]!.sides.terminate[0]).toBe(moved);
    expect(steps[3]!.settled).toEqual([
      { phase: 'withdraw', tunnel: 'db', address: '10.0.0.1', heldMs: 12, timedOut: false },
    ]);
  });

  it('with a grace, keeps a withdrawn endpoint on terminators that long after the last originator holds it', () => {
    const grace = { withdrawGraceMs: 500 };
    const steps = run([
      { target: [a] },
      { target: [moved], originators: [O('o', 1)], ...grace },
      { target: [moved], originators: [O('o', 2)], now: 100, ...grace },
      { target: [moved], originators: [O('o', 2)], now: 599, ...grace },
      { target: [moved], originators: [O('o', 2)], now: 600, ...grace },
    ]);
    expect(steps.map((s) => s.terminate.db)).toEqual(keptThreeStepsThenWithdrawn);
    expect(steps[4]!.settled).toEqual([
      { phase: 'withdraw', tunnel: 'db', address: '10.0.0.1', heldMs: 600, timedOut: false },
    ]);
  });

  it('keeps a deleted Service on terminators until originators dropped it', () => {
    const steps = run([
      { target: [a, tunnel('other', '10.0.0.9')] },
      { target: [tunnel('other', '10.0.0.9')], originators: [O('o', 1)] },
      { target: [tunnel('other', '10.0.0.9')], originators: [O('o', 2)] },
    ]);
    expect(steps[1]!.originate).toEqual({ other: ['10.0.0.9'] });
    expect(steps[1]!.terminate).toEqual({ other: ['10.0.0.9'], db: ['10.0.0.1'] });
    expect(steps[2]!.terminate).toEqual({ other: ['10.0.0.9'] });
  });

  it('goes ahead at the bound, and says so', () => {
    const stuck = { terminators: [T('stuck', -1, '10.0.0.2')], originators: [O('stuck-o', -1)] };
    const steps = run([
      { target: [a] },
      { target: [moved], ...stuck, now: 1000 },
      { target: [moved], ...stuck, now: 5999 },
      { target: [moved], ...stuck, now: 6000 },
      { target: [moved], ...stuck, now: 11000 },
    ]);
    expect(steps.map((s) => s.originate.db)).toEqual([
      ['10.0.0.1'],
      ['10.0.0.1'],
      ['10.0.0.1'],
      ['10.0.0.2'],
      ['10.0.0.2'],
    ]);
    expect(steps.map((s) => s.terminate.db)).toEqual(keptThreeStepsThenWithdrawn);
    expect(steps[3]!.settled).toEqual([
      { phase: 'announce', tunnel: 'db', address: '10.0.0.2', heldMs: 5000, timedOut: true, waitedFor: ['stuck'] },
    ]);
    expect(steps[4]!.settled).toEqual([
      { phase: 'withdraw', tunnel: 'db', address: '10.0.0.1', heldMs: 5000, timedOut: true, waitedFor: ['stuck-o'] },
    ]);
  });

  it('moves again while the first move is on hold: the last shown endpoint stays until a new one is shown', () => {
    const third = tunnel('db', '10.0.0.3');
    const peers = { terminators: [T('t2', 1, '10.0.0.2'), T('t3', 1, '10.0.0.3')], originators: [O('o', 1)] };
    const steps = run([
      { target: [a] },
      { target: [moved], ...peers },
      { target: [third], ...peers },
      { target: [third], ...peers, terminators: [T('t3', 3, '10.0.0.3')] },
    ]);
    expect(steps.map((s) => s.originate.db)).toEqual([['10.0.0.1'], ['10.0.0.1'], ['10.0.0.1'], ['10.0.0.3']]);
    expect(steps[2]!.terminate.db).toEqual(['10.0.0.1', '10.0.0.3']);
  });

  it('does not wait for a terminator bound elsewhere, nor for peers that left', () => {
    const steps = run([
      { target: [a] },
      { target: [moved], terminators: [T('elsewhere', -1, '10.0.0.3')], originators: [O('o', -1)] },
      { target: [moved], terminators: [], originators: [] },
    ]);
    expect(steps[1]!.originate).toEqual({ db: ['10.0.0.2'] });
    expect(steps[1]!.terminate).toEqual({ db: ['10.0.0.1', '10.0.0.2'] });
    expect(steps[2]!.terminate).toEqual({ db: ['10.0.0.2'] });
  });

  it('shows an endpoint that comes back during its withdrawal at once (terminators still have it)', () => {
    const steps = run([
      { target: [a] },
      { target: [moved], terminators: [T('t', 1)], originators: [O('o', 1)] },
      { target: [tunnel('db', '10.0.0.1')], terminators: [T('t', 1)], originators: [O('o', 1)] },
    ]);
    expect(steps[2]!.originate).toEqual({ db: ['10.0.0.1'] });
    // 10.0.0.2 was never shown to originators: it leaves terminators at once.
    expect(steps[2]!.terminate).toEqual({ db: ['10.0.0.1'] });
  });

  it('grows 1 -> 3 and shrinks back without ever showing an unheld endpoint or dropping a shown one early', () => {
    const three = tunnel('db', '10.0.0.1', '10.0.0.2', '10.0.0.3');
    const steps = run([
      { target: [a] },
      {
        target: [three],
        terminators: [T('t1', 1, '10.0.0.1'), T('t2', 1, '10.0.0.2'), T('t3', 1, '10.0.0.3')],
        originators: [O('o', 1)],
      },
      {
        target: [three],
        terminators: [T('t1', 2, '10.0.0.1'), T('t2', 2, '10.0.0.2'), T('t3', 1, '10.0.0.3')],
        originators: [O('o', 2)],
      },
      {
        target: [three],
        terminators: [T('t1', 3, '10.0.0.1'), T('t2', 3, '10.0.0.2'), T('t3', 3, '10.0.0.3')],
        originators: [O('o', 3)],
      },
      {
        target: [a],
        terminators: [T('t1', 4, '10.0.0.1'), T('t2', 4, '10.0.0.2'), T('t3', 4, '10.0.0.3')],
        originators: [O('o', 4)],
      },
      {
        target: [a],
        terminators: [T('t1', 5, '10.0.0.1'), T('t2', 5, '10.0.0.2'), T('t3', 5, '10.0.0.3')],
        originators: [O('o', 5)],
      },
    ]);
    expect(steps.map((s) => s.originate.db)).toEqual([
      ['10.0.0.1'],
      ['10.0.0.1'],
      ['10.0.0.1', '10.0.0.2'],
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      ['10.0.0.1'],
      ['10.0.0.1'],
    ]);
    expect(steps.map((s) => s.terminate.db)).toEqual([
      ['10.0.0.1'],
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      ['10.0.0.1', '10.0.0.2', '10.0.0.3'],
      ['10.0.0.1'],
    ]);
  });

  it('costs nothing for tunnels that did not change, and hands back the same lists with nothing on hold', () => {
    const [first, second] = run([
      { target: [a] },
      { target: [a], terminators: [T('t', -1)], originators: [O('o', -1)] },
    ]);
    expect(second!.settled).toEqual([]);
    expect(second!.sides.originate[0]).toBe(first!.sides.originate[0]);
    expect(second!.sides.terminate[0]).toBe(a);
  });
});

describe('tunnel-shim status while a change is held', () => {
  it('names the endpoint, the node it waits for and how long', async () => {
    const { statusTable } = await import('../../src/cli/status.js');
    const text = statusTable([
      {
        id: 'pod-b',
        role: 'terminate',
        listenAddress: '10.0.0.2',
        connectedAt: '',
        types: {},
        holding: [{ phase: 'announce', tunnel: 'shop/db:5432', address: '10.0.0.2', heldMs: 1234 }],
      },
      { id: 'laptop', role: 'originate', listenAddress: null, connectedAt: '', types: {}, holding: [] },
    ]);
    expect(text).toContain(
      'HELD (make-before-break)\n' +
        "  shop/db:5432 10.0.0.2: not yet announced to originators, held 1.2 s for pod-b's ACK\n",
    );
  });
});

describe('make-before-break decisions on the same target list (ACKs and the poll)', () => {
  it('resolves holds without looking at the target again, and keeps the state when nothing changes', () => {
    const list = [tunnel('db', '10.0.0.2')];
    const first = stepRollout(emptyRollout, {
      target: [tunnel('db', '10.0.0.1')],
      terminators: [],
      originators: [],
      now: 0,
      timeoutMs,
      revision: 1,
    });
    const peers = (synced: number) => ({ terminators: [T('t', synced, '10.0.0.2')], originators: [O('o', synced)] });
    const held = stepRollout(first.state, { target: list, ...peers(1), now: 0, timeoutMs, revision: 2 });
    const same = stepRollout(held.state, { target: list, ...peers(1), now: 5, timeoutMs, revision: 3 });
    expect(same.settled).toEqual([]);
    expect(same.state).toBe(held.state);
    const shown = stepRollout(same.state, { target: list, ...peers(2), now: 7, timeoutMs, revision: 3 });
    expect(deriveSides(list, shown.state).originate[0]!.endpoints.map((e) => e.address)).toEqual(['10.0.0.2']);
    expect(shown.state).not.toBe(same.state);
    const done = stepRollout(shown.state, { target: list, ...peers(3), now: 9, timeoutMs, revision: 4 });
    expect(deriveSides(list, done.state)).toEqual({ originate: list, terminate: list });
  });
});
