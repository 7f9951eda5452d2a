import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPLAY_WINDOW_SIZE, ReplayWindow } from '../../src-main/wireguard/replay.js';

test('the window is at least 2048 counters (8160 here)', () => {
  assert.ok(REPLAY_WINDOW_SIZE >= 2048);
  assert.equal(REPLAY_WINDOW_SIZE, 8160);
});

test('in-order counters are accepted once; duplicates are rejected', () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 20_000; i++) assert.ok(w.accept(i), `counter ${i}`);
  for (let i = 20_000 - REPLAY_WINDOW_SIZE; i < 20_000; i++) assert.equal(w.accept(i), false, `replayed ${i}`);
});

test('out-of-order counters within the window are accepted exactly once', () => {
  const w = new ReplayWindow();
  assert.ok(w.accept(5000));
  const order = Array.from({ length: 5000 }, (_, i) => i).sort(() => Math.random() - 0.5);
  for (const c of order) assert.ok(w.accept(c), `late ${c}`);
  for (const c of order.slice(0, 100)) assert.equal(w.accept(c), false);
  assert.equal(w.accept(5000), false);
});

test('window edges: greatest - (size - 1) is accepted, greatest - size is too old', () => {
  const w = new ReplayWindow();
  const top = 100_000;
  assert.ok(w.accept(top));
  assert.ok(w.accept(top - (REPLAY_WINDOW_SIZE - 1)));
  assert.equal(w.accept(top - REPLAY_WINDOW_SIZE), false);
  assert.equal(w.accept(0), false);
});

test('a jump larger than the whole ring clears old bits without false rejections', () => {
  const w = new ReplayWindow();
  for (let i = 0; i < 64; i++) w.accept(i);
  const far = 10 * REPLAY_WINDOW_SIZE + 17;
  assert.ok(w.accept(far));
  // Counters that map to the same ring slots as 0..63 but are new must be accepted.
  for (let i = far - 63; i < far; i++) assert.ok(w.accept(i), `fresh ${i}`);
  assert.ok(w.accept(far + 1));
});

test('counter 0 first, and large counters near 2^53 work', () => {
  const w = new ReplayWindow();
  assert.ok(w.accept(0));
  assert.equal(w.accept(0), false);
  const big = Number.MAX_SAFE_INTEGER - 10;
  assert.ok(w.accept(big));
  assert.ok(w.accept(big - 5));
  assert.equal(w.accept(big - 5), false);
  assert.ok(w.accept(big + 3));
});
