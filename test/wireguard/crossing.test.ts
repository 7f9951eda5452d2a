import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ipv4Packet, seqOf } from './fakes.js';
import { makePair } from './pair.js';

test('both sides start a handshake at the same moment (crossing initiations): traffic flows both ways', async () => {
  const pair = await makePair({ bKnowsA: true });
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    pair.tunB.inject([ipv4Packet('10.0.0.2', '10.0.0.1', 2)]);
    await pair.tunB.waitFor(1, 3000);
    await pair.tunA.waitFor(1, 3000);
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 3)]);
    pair.tunB.inject([ipv4Packet('10.0.0.2', '10.0.0.1', 4)]);
    await pair.tunB.waitFor(2, 3000);
    await pair.tunA.waitFor(2, 3000);
    assert.deepEqual(pair.tunB.written.map(seqOf), [1, 3]);
    assert.deepEqual(pair.tunA.written.map(seqOf), [2, 4]);
  } finally {
    await pair.close();
  }
});
