import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FilteredTun } from '../../src-main/engine/filtered-tun.js';
import type { TunDevice } from '../../src-main/wireguard/tun.js';

/** An in-memory TUN (fake): records what reaches the OS, lets the test inject what the OS sends. */
class FakeTun implements TunDevice {
  readonly name = 'fake0';
  readonly mtu = 1280;
  toOs: Uint8Array[] = [];
  emit: (p: Uint8Array[]) => void = () => {};
  start(onPackets: (p: Uint8Array[]) => void) {
    this.emit = onPackets;
  }
  write(p: Uint8Array[]) {
    this.toOs.push(...p);
  }
  async close() {}
}

function udp4(src: string, sport: number, dst: string, dport: number): Uint8Array {
  const b = new Uint8Array(28);
  b[0] = 0x45;
  b[9] = 17;
  b.set(src.split('.').map(Number), 12);
  b.set(dst.split('.').map(Number), 16);
  b[20] = sport >> 8;
  b[21] = sport & 255;
  b[22] = dport >> 8;
  b[23] = dport & 255;
  return b;
}

test('stateful filter: rules admit new flows, replies to our own flows pass, the rest is dropped and counted', () => {
  let now = 0;
  const inner = new FakeTun();
  const tun = new FilteredTun(inner, () => now);
  tun.setRules([{ srcs: ['100.64.0.2/32'], dsts: [{ cidr: '100.64.0.1/32', ports: { first: 53, last: 53 } }], protos: [17] }]);
  const fromOs: Uint8Array[][] = [];
  tun.start((p) => fromOs.push(p));

  tun.write([udp4('100.64.0.2', 5000, '100.64.0.1', 53)]);
  assert.equal(inner.toOs.length, 1, 'allowed by rule');
  tun.write([udp4('100.64.0.2', 5000, '100.64.0.1', 22)]);
  assert.equal(inner.toOs.length, 1, 'port 22 not allowed');
  assert.equal(tun.dropped, 1);

  tun.write([udp4('100.64.0.3', 7000, '100.64.0.1', 40000)]);
  assert.equal(tun.dropped, 2, 'unsolicited from another peer');
  inner.emit([udp4('100.64.0.1', 40000, '100.64.0.3', 7000)]);
  assert.equal(fromOs.length, 1, 'outgoing packets are passed through');
  tun.write([udp4('100.64.0.3', 7000, '100.64.0.1', 40000)]);
  assert.equal(inner.toOs.length, 2, 'the reply to our own flow passes');

  now += 121_000;
  tun.write([udp4('100.64.0.3', 7000, '100.64.0.1', 40000)]);
  assert.equal(tun.dropped, 3, 'an idle flow expires');
  tun.write([new Uint8Array([0x45, 0, 0])]);
  assert.equal(tun.dropped, 4, 'garbage is dropped');
});
