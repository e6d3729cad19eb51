// clearIfAny: V8's clear() allocates a new table even for an empty Map or Set (in old space for an old
// one), so per-stream collections emptied on every change are cleared only when they hold something.
import { describe, expect, it, vi } from 'vitest';
import { clearIfAny } from '../../src/clear.js';

describe('clearIfAny', () => {
  it('empties a collection that holds something', () => {
    const set = new Set(['a', 'b']);
    clearIfAny(set);
    expect(set.size).toBe(0);
  });

  it('leaves an empty collection alone: clear() is not called', () => {
    const clear = vi.fn();
    clearIfAny({ size: 0, clear });
    expect(clear).not.toHaveBeenCalled();
  });
});
