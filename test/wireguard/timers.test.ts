import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipv4Packet, seqOf, sleep, until } from './fakes.js';
import { makePair } from './pair.js';

/** Counts message types per direction ("a>1" = initiations sent by a). */
function counter() {
  const counts = new Map<string, number>();
  const tapFn = (from: string, _to: string, d: Uint8Array) => {
    const k = `${from}>${d[0]}${d[0] === 4 && d.length === 32 ? 'k' : ''}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
    return true;
  };
  return { counts, tapFn, get: (k: string) => counts.get(k) ?? 0 };
}

test('a two-way transfer spanning several time-based rekeys loses nothing', async () => {
  const pair = await makePair({
    timers: { rekeyAfterTimeMs: 250, rejectAfterTimeMs: 6000, rekeyTimeoutMs: 150, rekeyTimeoutJitterMaxMs: 20, keepaliveTimeoutMs: 100 },
  });
  const c = counter();
  pair.net.tap = c.tapFn;
  try {
    const n = 200;
    for (let i = 0; i < n; i++) {
      pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', i)]);
      pair.tunB.inject([ipv4Packet('10.0.0.2', '10.0.0.1', i)]);
      await sleep(5);
    }
    await pair.tunB.waitFor(n);
    await pair.tunA.waitFor(n);
    assert.deepEqual(new Set(pair.tunB.written.map(seqOf)).size, n, 'a -> b lost packets');
    assert.deepEqual(new Set(pair.tunA.written.map(seqOf)).size, n, 'b -> a lost packets');
    const handshakes = c.get('a>2') + c.get('b>2');
    assert.ok(handshakes >= 3, `expected at least 2 rekeys after the first handshake, saw ${handshakes} handshakes`);
  } finally {
    await pair.close();
  }
});

test('a transfer spanning rekeys by message count (REKEY_AFTER_MESSAGES) loses nothing', async () => {
  const pair = await makePair({ timers: { rekeyAfterMessages: 40, rekeyTimeoutMs: 20, rekeyTimeoutJitterMaxMs: 2 } });
  const c = counter();
  pair.net.tap = c.tapFn;
  try {
    const n = 200;
    for (let i = 0; i < n; i++) {
      pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', i)]);
      await sleep(2);
    }
    await pair.tunB.waitFor(n);
    assert.deepEqual(pair.tunB.written.map(seqOf), Array.from({ length: n }, (_, i) => i));
    assert.ok(c.get('a>1') >= 3, `expected at least 3 handshakes, saw ${c.get('a>1')}`);
  } finally {
    await pair.close();
  }
});

test('REJECT_AFTER_TIME: an expired keypair neither sends nor accepts data', async () => {
  const pair = await makePair({ timers: { rejectAfterTimeMs: 300, rekeyAfterTimeMs: 60_000, rekeyTimeoutMs: 100, keepaliveTimeoutMs: 5_000 } });
  const c = counter();
  const withheld: Uint8Array[] = [];
  let hold = false;
  pair.net.tap = (from, to, d) => {
    c.tapFn(from, to, d);
    if (hold && from === 'a') {
      if (d[0] === 4) withheld.push(Uint8Array.from(d));
      return false;
    }
    return true;
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 0)]);
    await pair.tunB.waitFor(1);
    hold = true;
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1), ipv4Packet('10.0.0.1', '10.0.0.2', 2)]);
    assert.equal(withheld.length, 2);
    pair.net.inject('b', 'a', [withheld[0]]);
    assert.equal(pair.tunB.written.length, 2, 'the first withheld packet is accepted while the key is fresh');
    await sleep(350);
    pair.net.inject('b', 'a', [withheld[1]]);
    assert.equal(pair.tunB.written.length, 2, 'b accepted data under an expired keypair');
    const dataBefore = c.get('a>4');
    const initsBefore = c.get('a>1');
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 3)]);
    assert.equal(c.get('a>4'), dataBefore, 'a sent data under an expired keypair');
    assert.equal(c.get('a>1'), initsBefore + 1, 'a should start a new handshake instead');
  } finally {
    await pair.close();
  }
});

test('a peer that received data and has nothing to send replies with a keepalive after KEEPALIVE_TIMEOUT', async () => {
  const pair = await makePair({ timers: { keepaliveTimeoutMs: 150 } });
  const c = counter();
  let keepaliveAt = 0;
  pair.net.tap = (from, to, d) => {
    c.tapFn(from, to, d);
    if (from === 'b' && d[0] === 4 && d.length === 32 && !keepaliveAt) keepaliveAt = Date.now();
    return true;
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 0)]);
    await pair.tunB.waitFor(1);
    const receivedAt = Date.now();
    await until(() => keepaliveAt > 0, 2000, 'keepalive from b');
    const delay = keepaliveAt - receivedAt;
    assert.ok(delay >= 120 && delay < 600, `keepalive after ${delay} ms, expected ~150`);
    await sleep(400);
    assert.equal(c.get('b>4k'), 1, 'exactly one keepalive for one received packet');
  } finally {
    await pair.close();
  }
});

test('persistent keepalive: an idle peer sends a keepalive every interval', async () => {
  const pair = await makePair({ keepaliveA: 1 });
  const times: number[] = [];
  pair.net.tap = (from, _to, d) => (from === 'a' && d[0] === 4 && d.length === 32 && times.push(Date.now()), true);
  try {
    await until(() => times.length >= 3, 4000, 'three persistent keepalives');
    // The first confirms the handshake; the next ones come about a second apart.
    const gap = times[2] - times[1];
    assert.ok(gap >= 900 && gap < 2000, `gap ${gap} ms, expected ~1000`);
  } finally {
    await pair.close();
  }
});

test('handshake retransmits every REKEY_TIMEOUT and gives up after REKEY_ATTEMPT_TIME', async () => {
  const pair = await makePair({ timers: { rekeyTimeoutMs: 40, rekeyTimeoutJitterMaxMs: 5, rekeyAttemptTimeMs: 200 } });
  const c = counter();
  pair.net.tap = (from, to, d) => (c.tapFn(from, to, d), false); // b is unreachable
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 0)]);
    await sleep(450);
    assert.equal(c.get('a>1'), 5, 'REKEY_ATTEMPT_TIME / REKEY_TIMEOUT attempts');
    await sleep(150);
    assert.equal(c.get('a>1'), 5, 'no attempts after giving up');
    // The staged packet was dropped: once b is reachable, a new packet goes alone.
    pair.net.tap = () => true;
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    await sleep(30);
    assert.deepEqual(pair.tunB.written.map(seqOf), [1]);
  } finally {
    await pair.close();
  }
});

test('sending data with no reply for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT starts a new handshake', async () => {
  const pair = await makePair({ timers: { keepaliveTimeoutMs: 100, rekeyTimeoutMs: 50, rekeyTimeoutJitterMaxMs: 1 } });
  const c = counter();
  let dropFromB = false;
  pair.net.tap = (from, to, d) => (c.tapFn(from, to, d), !(dropFromB && from === 'b'));
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 0)]);
    await pair.tunB.waitFor(1);
    await sleep(300); // let b's keepalive come and go
    dropFromB = true;
    const before = c.get('a>1');
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await until(() => c.get('a>1') > before, 1000, 'a new initiation from a');
  } finally {
    await pair.close();
  }
});

test('REJECT_AFTER_MESSAGES: a keypair stops at the limit, counters never repeat, and the rest waits for a new keypair', async () => {
  const pair = await makePair({ timers: { rejectAfterMessages: 10, rekeyTimeoutMs: 30, rekeyTimeoutJitterMaxMs: 1 } });
  const seen = new Set<string>();
  let blockHandshakes = false;
  pair.net.tap = (from, _to, d) => {
    if (d[0] === 4 && from === 'a') {
      const key = Buffer.from(d.subarray(4, 16)).toString('hex'); // receiver index + counter
      assert.ok(!seen.has(key), `nonce reused: ${key}`);
      seen.add(key);
    }
    return !(blockHandshakes && (d[0] === 1 || d[0] === 2));
  };
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 0)]);
    await pair.tunB.waitFor(1);
    blockHandshakes = true;
    pair.tunA.inject(Array.from({ length: 20 }, (_, i) => ipv4Packet('10.0.0.1', '10.0.0.2', i + 1)));
    await sleep(60);
    assert.equal(pair.tunB.written.length, 10, 'counters 0..9 only under the first keypair');
    blockHandshakes = false;
    await pair.tunB.waitFor(21, 3000);
    assert.deepEqual(pair.tunB.written.map(seqOf), Array.from({ length: 21 }, (_, i) => i));
  } finally {
    await pair.close();
  }
});
