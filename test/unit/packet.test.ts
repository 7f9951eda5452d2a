import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { formatIp } from '../../src-main/protocol/ip.js';
import { parsePacketInfo } from '../../src-main/protocol/packet.js';

function ipv4Tcp(dport: number, flags: number): Uint8Array {
  const b = new Uint8Array(40);
  b[0] = 0x45;
  b[9] = 6;
  b.set([100, 64, 0, 1], 12);
  b.set([100, 64, 0, 2], 16);
  b[20] = 0x9c;
  b[21] = 0x40; // sport 40000
  b[22] = dport >> 8;
  b[23] = dport & 0xff;
  b[33] = flags;
  return b;
}

test('IPv4 TCP header fields are read', () => {
  const p = parsePacketInfo(ipv4Tcp(443, 0x02))!;
  assert.equal(p.version, 4);
  assert.equal(formatIp(p.src), '100.64.0.1');
  assert.equal(formatIp(p.dst), '100.64.0.2');
  assert.deepEqual([p.proto, p.sport, p.dport, p.tcpFlags], [6, 40000, 443, 2]);
});

test('IPv6 UDP behind a hop-by-hop extension header, and a non-first fragment', () => {
  const b = new Uint8Array(40 + 8 + 8);
  b[0] = 0x60;
  b[6] = 0; // hop-by-hop
  b[8] = 0xfd;
  b[24] = 0xfd;
  b[39] = 2;
  b[40] = 17; // next: UDP
  b[41] = 0; // 8 bytes
  b[50] = 0x00;
  b[51] = 53;
  const p = parsePacketInfo(b)!;
  assert.deepEqual([p.version, p.proto, p.dport, p.fragment], [6, 17, 53, false]);
  const f = new Uint8Array(40 + 8);
  f[0] = 0x60;
  f[6] = 44;
  f[40] = 6;
  f[43] = 0x08; // offset 1 (×8 bytes): not the first fragment
  const q = parsePacketInfo(f)!;
  assert.deepEqual([q.proto, q.fragment, q.dport], [6, true, 0]);
});

test('truncated and random packets never throw', () => {
  const full = ipv4Tcp(22, 0x10);
  for (let n = 0; n < full.length; n++) {
    const p = parsePacketInfo(full.subarray(0, n));
    if (n < 34) assert.equal(p, undefined, `length ${n}`);
  }
  for (let i = 0; i < 20000; i++) parsePacketInfo(randomBytes(Math.floor(Math.random() * 80)));
});
