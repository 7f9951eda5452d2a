import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AllowedIps, InvalidCidrError, formatCidr, parseCidr, parseIPv4, parseIPv6 } from '../../src-main/wireguard/allowed-ips.js';
import { ipv4Packet, ipv6Packet } from './fakes.js';

const v4 = (s: string) => parseIPv4(s)!;
const v6 = (s: string) => parseIPv6(s)!;

test('IPv4 longest-prefix match', () => {
  const t = new AllowedIps<string>();
  t.insert('0.0.0.0/0', 'default');
  t.insert('10.0.0.0/8', 'ten');
  t.insert('10.1.0.0/16', 'ten-one');
  t.insert('10.1.2.3/32', 'host');
  assert.equal(t.lookup(v4('10.1.2.3'), 0, 4), 'host');
  assert.equal(t.lookup(v4('10.1.2.4'), 0, 4), 'ten-one');
  assert.equal(t.lookup(v4('10.200.0.1'), 0, 4), 'ten');
  assert.equal(t.lookup(v4('192.0.2.1'), 0, 4), 'default');
});

test('IPv6 longest-prefix match, independent of IPv4', () => {
  const t = new AllowedIps<string>();
  t.insert('fd00::/8', 'ula');
  t.insert('fd00:1234::/32', 'site');
  t.insert('fd00:1234::1/128', 'host');
  t.insert('10.0.0.0/8', 'v4');
  assert.equal(t.lookup(v6('fd00:1234::1'), 0, 16), 'host');
  assert.equal(t.lookup(v6('fd00:1234::2'), 0, 16), 'site');
  assert.equal(t.lookup(v6('fdff::1'), 0, 16), 'ula');
  assert.equal(t.lookup(v6('2001:db8::1'), 0, 16), undefined);
  assert.equal(t.lookup(v6('::ffff:10.0.0.1'), 0, 16), undefined);
});

test('removal: exact prefix only, only for its owner, and removeValue drops all of a peer', () => {
  const t = new AllowedIps<string>();
  t.insert('10.0.0.0/8', 'a');
  t.insert('10.1.0.0/16', 'b');
  t.insert('fd00::/8', 'b');
  t.remove('10.1.0.0/16', 'a');
  assert.equal(t.lookup(v4('10.1.0.1'), 0, 4), 'b', 'another owner must not remove it');
  t.remove('10.1.0.0/16');
  assert.equal(t.lookup(v4('10.1.0.1'), 0, 4), 'a');
  t.insert('10.1.0.0/16', 'b');
  t.removeValue('b');
  assert.equal(t.lookup(v4('10.1.0.1'), 0, 4), 'a');
  assert.equal(t.lookup(v6('fd00::1'), 0, 16), undefined);
  assert.deepEqual(t.prefixesOf('a').map(formatCidr), ['10.0.0.0/8']);
});

test('inserting a prefix another peer has moves it (allowed IPs are exclusive)', () => {
  const t = new AllowedIps<string>();
  t.insert('10.0.0.0/24', 'a');
  t.insert('10.0.0.0/24', 'b');
  assert.equal(t.lookup(v4('10.0.0.9'), 0, 4), 'b');
  assert.deepEqual(t.prefixesOf('a'), []);
});

test('packet lookups: destination for sending, source for the incoming check', () => {
  const t = new AllowedIps<string>();
  t.insert('10.0.0.2/32', 'peer2');
  t.insert('fd00::2/128', 'peer2');
  t.insert('10.0.0.1/32', 'peer1');
  const p = ipv4Packet('10.0.0.1', '10.0.0.2', 1);
  assert.equal(t.lookupDestination(p), 'peer2');
  assert.equal(t.lookupSource(p), 'peer1');
  assert.equal(t.lookupDestination(ipv6Packet(v6('fd00::1'), v6('fd00::2'), 1)), 'peer2');
  assert.equal(t.lookupSource(ipv6Packet(v6('fd00::1'), v6('fd00::2'), 1)), undefined);
  assert.equal(t.lookupDestination(new Uint8Array([0x45, 0, 0])), undefined, 'truncated header');
  assert.equal(t.lookupDestination(new Uint8Array(40)), undefined, 'version 0');
});

test('CIDR parsing clears host bits, formats canonically and rejects junk with a typed error', () => {
  assert.equal(formatCidr(parseCidr('10.1.2.3/8')), '10.0.0.0/8');
  assert.equal(formatCidr(parseCidr('192.0.2.7')), '192.0.2.7/32');
  assert.equal(formatCidr(parseCidr('fd00:0:0:0:0:0:0:1/128')), 'fd00::1/128');
  assert.equal(formatCidr(parseCidr('2001:db8:1:2:3:4:5:6/33')), '2001:db8::/33');
  assert.equal(formatCidr(parseCidr('::/0')), '::/0');
  assert.equal(formatCidr(parseCidr('::ffff:1.2.3.4/128')), '::ffff:102:304/128');
  for (const bad of ['', '10.0.0.0/33', '10.0.0/8', '256.1.1.1/32', '1.2.3.4/-1', 'fd00::1::2/64', 'fd00::/129', 'x/1', '01.2.3.4/8', '1:2:3:4:5:6:7:8:9/64']) {
    assert.throws(() => parseCidr(bad), InvalidCidrError, bad);
  }
});
