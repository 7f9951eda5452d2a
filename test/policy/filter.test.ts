import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FilterRule, matchFilter, PacketFilter } from '../../src-main/protocol/filter.js';
import { parseIp } from '../../src-main/protocol/ip.js';
import { type PacketInfo, parsePacketInfo } from '../../src-main/protocol/packet.js';

const pkt = (src: string, dst: string, proto: number, dport: number): PacketInfo => ({
  version: src.includes(':') ? 6 : 4,
  src: parseIp(src)!,
  dst: parseIp(dst)!,
  proto,
  sport: 50000,
  dport,
  tcpFlags: 0,
  icmpType: proto === 1 || proto === 58 ? 8 : -1,
  fragment: false,
});

const RULES: FilterRule[] = [
  { srcs: ['100.64.0.1/32', '10.0.0.0/8'], dsts: [{ cidr: '100.64.0.9/32', ports: { first: 22, last: 22 } }, { cidr: '100.64.0.9/32', ports: { first: 8000, last: 8999 } }], protos: [6] },
  { srcs: ['fd7a::/64'], dsts: [{ cidr: 'fd7a::9/128', ports: { first: 0, last: 65535 } }], protos: [1, 6, 17, 58] },
];

test('matchFilter admits exactly the source, destination, port and protocol the rules list', () => {
  const cases: [PacketInfo, boolean, string][] = [
    [pkt('100.64.0.1', '100.64.0.9', 6, 22), true, 'host source, single port'],
    [pkt('10.200.1.1', '100.64.0.9', 6, 8500), true, 'prefix source, port range'],
    [pkt('10.200.1.1', '100.64.0.9', 6, 9000), false, 'just past the range'],
    [pkt('100.64.0.1', '100.64.0.9', 17, 22), false, 'udp not listed'],
    [pkt('100.64.0.2', '100.64.0.9', 6, 22), false, 'source not listed'],
    [pkt('100.64.0.1', '100.64.0.8', 6, 22), false, 'other destination'],
    [pkt('fd7a::5', 'fd7a::9', 58, 0), true, 'ICMPv6 ignores ports'],
    [pkt('fd7a:0:0:1::5', 'fd7a::9', 17, 53), false, 'outside the v6 source prefix'],
    [pkt('fd7a::5', 'fd7a::9', 132, 53), false, 'sctp not listed'],
  ];
  for (const [p, want, why] of cases) assert.equal(matchFilter(RULES, p), want, why);
  assert.equal(matchFilter([], pkt('100.64.0.1', '100.64.0.9', 6, 22)), false, 'no rules: default deny');
});

test('PacketFilter rejects malformed rule text up front instead of on a packet', () => {
  assert.throws(() => new PacketFilter([{ srcs: ['300.1.1.1/32'], dsts: [], protos: [6] }]), /invalid IP address/);
});

function ipv6(next: number, extra: number[]): Uint8Array {
  const b = new Uint8Array(40 + extra.length);
  b[0] = 0x60;
  b[6] = next;
  b[7] = 64;
  b[8] = 0xfd;
  b[23] = 1;
  b[24] = 0xfd;
  b[39] = 9;
  b.set(extra, 40);
  return b;
}

test('IPv6: TCP behind destination options, AH and a first fragment; an overlong chain is refused', () => {
  const tcp = [0xc3, 0x50, 0x01, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x12, 0, 0, 0, 0, 0, 0];
  const destOpts = [51, 0, 1, 4, 0, 0, 0, 0]; // next AH, 8 bytes (RFC 8200 §4.6)
  const ah = [44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]; // next Fragment, (1+2)*4 = 12 bytes (RFC 4302 §2.2)
  const frag = [6, 0, 0, 0, 0, 0, 0, 1]; // offset 0: the first fragment carries the TCP header
  const p = parsePacketInfo(ipv6(60, [...destOpts, ...ah, ...frag, ...tcp]))!;
  assert.deepEqual([p.version, p.proto, p.sport, p.dport, p.tcpFlags, p.fragment], [6, 6, 50000, 443, 0x12, false]);
  const hop = (next: number) => [next, 0, 0, 0, 0, 0, 0, 0];
  const chain = Array.from({ length: 9 }, () => hop(60)).flat();
  assert.equal(parsePacketInfo(ipv6(60, [...chain, ...tcp])), undefined, 'more extension headers than we walk');
  assert.equal(parsePacketInfo(ipv6(60, [6, 200, 0, 0, 0, 0, 0, 0, ...tcp])), undefined, 'an extension length past the end');
});

test('IPv4: options, ICMP type, a later fragment without ports', () => {
  const b = new Uint8Array(24 + 8);
  b[0] = 0x46; // IHL 6: four bytes of options
  b[9] = 1;
  b.set([100, 64, 0, 1, 100, 64, 0, 9], 12);
  b[24] = 8; // echo request
  const p = parsePacketInfo(b)!;
  assert.deepEqual([p.proto, p.icmpType, p.dport], [1, 8, 0]);
  const f = new Uint8Array(20);
  f[0] = 0x45;
  f[9] = 17;
  f[7] = 1; // fragment offset 1
  assert.deepEqual([parsePacketInfo(f)!.fragment, parsePacketInfo(f)!.dport], [true, 0]);
  assert.equal(parsePacketInfo(new Uint8Array([0x4f])), undefined, 'IHL 60 but 1 byte');
});

test('fuzz: mutated real headers never throw, and what comes back stays inside the buffer', () => {
  let seed = 4242;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const base = [ipv6(0, [6, 0, 1, 4, 0, 0, 0, 0, 0xc3, 0x50, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 2, 0, 0, 0, 0, 0, 0]), (() => {
    const b = new Uint8Array(40);
    b[0] = 0x45;
    b[9] = 6;
    return b;
  })()];
  for (let i = 0; i < 20000; i++) {
    const src = base[i % 2];
    const b = src.slice(0, rnd(src.length + 1));
    for (let k = rnd(4); k > 0 && b.length; k--) b[rnd(b.length)] = rnd(256);
    const p = parsePacketInfo(b);
    if (!p) continue;
    assert.ok(p.version === 4 || p.version === 6);
    assert.equal(p.src.length, p.version === 4 ? 4 : 16);
    assert.ok(p.sport >= 0 && p.sport <= 65535 && p.dport >= 0 && p.dport <= 65535 && p.proto >= 0 && p.proto <= 255);
    matchFilter(RULES, p);
  }
});
