import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidCidrError, parseCidr } from '../../src-main/wireguard/allowed-ips.js';
import { randomBytes } from '../../src-main/wireguard/crypto.js';
import { innerPacket } from '../../src-main/wireguard/device.js';
import { messageType } from '../../src-main/wireguard/messages.js';
import { InvalidEndpointError, parseUdpEndpoint } from '../../src-main/wireguard/udp-bind.js';
import { ipv4Packet, sleep } from './fakes.js';
import { makePair } from './pair.js';

const rnd = (n: number) => Math.floor(Math.random() * n);

/** Random garbage, right-sized messages with random contents, and bit-flipped/truncated real messages. */
function mutants(real: Uint8Array[], count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const sizes = [0, 1, 3, 4, 31, 32, 33, 64, 92, 148, 1500];
  for (let i = 0; i < count; i++) {
    const kind = rnd(4);
    if (kind === 0) out.push(randomBytes(sizes[rnd(sizes.length)]));
    else if (kind === 1) {
      const d = randomBytes(sizes[rnd(sizes.length)] || 4);
      d[0] = 1 + rnd(4);
      d[1] = d[2] = d[3] = 0;
      out.push(d);
    } else {
      const d = Uint8Array.from(real[rnd(real.length)]);
      if (kind === 2) for (let k = 0; k <= rnd(3); k++) d[rnd(d.length)] ^= 1 << rnd(8);
      out.push(kind === 3 ? d.subarray(0, rnd(d.length)) : d);
    }
  }
  return out;
}

test('fuzz: garbage and mutated datagrams are dropped without throwing, and the tunnel keeps working', async () => {
  const pair = await makePair();
  const real: Uint8Array[] = [];
  pair.net.tap = (_from, _to, d) => (real.push(Uint8Array.from(d)), true);
  try {
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 1)]);
    await pair.tunB.waitFor(1);
    pair.tunB.inject([ipv4Packet('10.0.0.2', '10.0.0.1', 2)]);
    await pair.tunA.waitFor(1);
    assert.ok(real.length >= 4);
    const writtenB = pair.tunB.written.length;
    const writtenA = pair.tunA.written.length;
    for (let round = 0; round < 20; round++) {
      pair.net.inject('b', 'mallory', mutants(real, 100));
      pair.net.inject('a', 'mallory', mutants(real, 100));
    }
    assert.equal(pair.tunB.written.length, writtenB, 'a mutant reached b\'s TUN');
    assert.equal(pair.tunA.written.length, writtenA, 'a mutant reached a\'s TUN');
    await sleep(20);
    pair.tunA.inject([ipv4Packet('10.0.0.1', '10.0.0.2', 3)]);
    await pair.tunB.waitFor(writtenB + 1);
  } finally {
    await pair.close();
  }
});

test('fuzz: messageType and innerPacket never throw and stay in bounds', () => {
  for (let i = 0; i < 20_000; i++) {
    const d = randomBytes(rnd(200));
    if (d.length > 0 && rnd(2)) d[0] = rnd(2) ? 0x45 : 0x60;
    const t = messageType(d);
    assert.ok(t >= 0 && t <= 4);
    const p = innerPacket(d);
    if (p) assert.ok(p.length <= d.length && p.length >= 20);
  }
});

test('fuzz: CIDR and endpoint parsers throw only their typed errors', () => {
  const alphabet = '0123456789abcdef.:/[]%-xyz ';
  for (let i = 0; i < 20_000; i++) {
    const s = Array.from({ length: rnd(24) }, () => alphabet[rnd(alphabet.length)]).join('');
    try {
      parseCidr(s);
    } catch (err) {
      assert.ok(err instanceof InvalidCidrError, `parseCidr(${JSON.stringify(s)}) threw ${String(err)}`);
    }
    try {
      parseUdpEndpoint(s);
    } catch (err) {
      assert.ok(err instanceof InvalidEndpointError, `parseUdpEndpoint(${JSON.stringify(s)}) threw ${String(err)}`);
    }
  }
});
