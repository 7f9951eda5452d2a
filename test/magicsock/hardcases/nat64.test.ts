/**
 * NAT64 address synthesis and prefix discovery: the RFC 6052 §2.4 example table, the
 * RFC 7050 §3 well-known-address search at every prefix length, and a randomized check
 * that hostile AAAA answers never throw and never yield a prefix that does not hold a WKA.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { test } from 'node:test';
import { formatIPv6, parseIPv6 } from '../../../src-main/magicsock/ip6.js';
import {
  discoverNat64Prefixes,
  extractIPv4,
  formatNat64Prefix,
  fromNat64Endpoint,
  mapEndpointsToNat64,
  nat64DerpMap,
  NAT64_PREFIX_LENGTHS,
  Nat64Error,
  parseNat64Prefix,
  prefixesFromAnswer,
  synthesizeIPv6,
  WELL_KNOWN_IPV4,
} from '../../../src-main/magicsock/nat64.js';

/** RFC 6052 §2.4, the table of IPv4-embedded IPv6 addresses of 192.0.2.33. */
const RFC6052_EXAMPLES: [string, string][] = [
  ['2001:db8::/32', '2001:db8:c000:221::'],
  ['2001:db8:100::/40', '2001:db8:1c0:2:21::'],
  ['2001:db8:122::/48', '2001:db8:122:c000:2:2100::'],
  ['2001:db8:122:300::/56', '2001:db8:122:3c0:0:221::'],
  ['2001:db8:122:344::/64', '2001:db8:122:344:c0:2:2100::'],
  ['2001:db8:122:344::/96', '2001:db8:122:344::192.0.2.33'],
  ['64:ff9b::/96', '64:ff9b::192.0.2.33'],
];

const sameAddr = (a: string, b: string) => assert.equal(formatIPv6(parseIPv6(a)), formatIPv6(parseIPv6(b)), `${a} vs ${b}`);

test('RFC 6052 §2.4 examples: synthesis and extraction at every prefix length', () => {
  for (const [prefix, expected] of RFC6052_EXAMPLES) {
    const p = parseNat64Prefix(prefix);
    sameAddr(synthesizeIPv6(p, '192.0.2.33'), expected);
    assert.equal(extractIPv4(p, expected), '192.0.2.33', prefix);
    assert.equal(formatNat64Prefix(p), prefix);
  }
  // Not under the prefix: nothing to extract.
  assert.equal(extractIPv4(parseNat64Prefix('2001:db8:122::/48'), '2001:db8:123:c000:2:2100::'), undefined);
  assert.equal(extractIPv4(parseNat64Prefix('64:ff9b::/96'), 'not-an-address'), undefined);
});

test('the u octet (bits 64..71) is skipped when embedding and must be zero in a prefix', () => {
  const p = parseNat64Prefix('2001:db8:100::/40');
  const b = parseIPv6(synthesizeIPv6(p, '255.255.255.255'));
  assert.equal(b[8], 0, 'u octet stays zero');
  assert.deepEqual([...b.subarray(5, 8), b[9]], [255, 255, 255, 255]);
  assert.throws(() => parseNat64Prefix('2001:db8:0:0:ff00::/96'), Nat64Error);
  assert.throws(() => parseNat64Prefix('2001:db8::/33'), Nat64Error);
  assert.throws(() => parseNat64Prefix('2001:db8::1/64'), /bits past the prefix/);
  assert.throws(() => parseNat64Prefix('192.0.2.0/24'), Nat64Error);
  assert.throws(() => synthesizeIPv6(p, '300.1.1.1'), Nat64Error);
});

test('RFC 7050 §3: the prefix is found at each of the six lengths from the AAAA answer', () => {
  for (const [prefix] of RFC6052_EXAMPLES) {
    const p = parseNat64Prefix(prefix);
    const answer = WELL_KNOWN_IPV4.map((w) => synthesizeIPv6(p, w));
    assert.deepEqual(prefixesFromAnswer(answer).map(formatNat64Prefix), [prefix]);
    // Only 192.0.0.171 answered: still enough.
    assert.deepEqual(prefixesFromAnswer([answer[1]]).map(formatNat64Prefix), [prefix]);
  }
});

test('RFC 7050 §3: 192.0.0.171 settles a WKA found at two positions; native AAAA give nothing', () => {
  // 2001:db8:c000:aa::/64 carries the bit pattern of 192.0.0.170 where a /32 would embed it.
  const p = parseNat64Prefix('2001:db8:c000:aa::/64');
  const a170 = synthesizeIPv6(p, '192.0.0.170');
  assert.equal(extractIPv4(parseNat64Prefix('2001:db8::/32'), a170), '192.0.0.170', 'ambiguous on its own');
  assert.deepEqual(prefixesFromAnswer([a170]), [], 'ambiguous without the second WKA: ignored');
  assert.deepEqual(prefixesFromAnswer([a170, synthesizeIPv6(p, '192.0.0.171')]).map(formatNat64Prefix), ['2001:db8:c000:aa::/64']);
  assert.deepEqual(prefixesFromAnswer(['2001:db8::1', 'fe80::1', 'garbage']), []);
  // Two NAT64s: both prefixes, in answer order, without duplicates.
  const q = parseNat64Prefix('64:ff9b::/96');
  const two = prefixesFromAnswer([synthesizeIPv6(q, '192.0.0.170'), synthesizeIPv6(p, '192.0.0.170'), synthesizeIPv6(q, '192.0.0.171'), synthesizeIPv6(p, '192.0.0.171'), synthesizeIPv6(q, '192.0.0.170')]);
  assert.deepEqual(two.map(formatNat64Prefix), ['64:ff9b::/96', '2001:db8:c000:aa::/64']);
});

test('discovery asks AAAA ipv4only.arpa and treats failures as "no DNS64"', async () => {
  const asked: string[] = [];
  const found = await discoverNat64Prefixes({
    resolve6: async (name) => {
      asked.push(name);
      return ['2001:db8:64::c000:aa', '2001:db8:64::c000:ab'];
    },
  });
  assert.deepEqual(asked, ['ipv4only.arpa']);
  assert.deepEqual(found.map(formatNat64Prefix), ['2001:db8:64::/96']);
  const none = await discoverNat64Prefixes({ resolve6: () => Promise.reject(Object.assign(new Error('queryAaaa ENODATA'), { code: 'ENODATA' })) });
  assert.deepEqual(none, []);
});

test('candidates, STUN servers and relay nodes are rewritten through the prefix', () => {
  const p = parseNat64Prefix('2001:db8:64::/96');
  assert.deepEqual(mapEndpointsToNat64(p, ['198.51.100.10:41641', '[2001:db8::5]:41641', '198.51.100.10:41641', '203.0.113.7:3478']), [
    '[2001:db8:64::c633:640a]:41641',
    '[2001:db8::5]:41641',
    '[2001:db8:64::cb00:7107]:3478',
  ]);
  assert.equal(fromNat64Endpoint(p, '[2001:db8:64::c633:640a]:41641'), '198.51.100.10:41641');
  assert.equal(fromNat64Endpoint(p, '[2001:db8::5]:41641'), '[2001:db8::5]:41641');
  const map = nat64DerpMap(p, {
    regions: {
      1: {
        regionId: 1,
        regionCode: 'a',
        regionName: 'A',
        nodes: [
          { name: '1a', regionId: 1, hostName: '198.51.100.20', derpPort: 443, stunPort: 3478 },
          { name: '1b', regionId: 1, hostName: 'relay.example', ipv4: '198.51.100.21', derpPort: 443, stunPort: 3478 },
          { name: '1c', regionId: 1, hostName: 'relay6.example', ipv4: '198.51.100.22', ipv6: '2001:db8::22', derpPort: 443, stunPort: 3478 },
          { name: '1d', regionId: 1, hostName: 'byname.example', derpPort: 443, stunPort: 3478 },
        ],
      },
    },
  });
  assert.deepEqual(
    map.regions[1].nodes.map((n) => n.ipv6),
    ['2001:db8:64::c633:6414', '2001:db8:64::c633:6415', '2001:db8::22', undefined],
  );
});

test('fuzz: random and hostile AAAA answers never throw; every prefix found really embeds a WKA', () => {
  for (let i = 0; i < 3000; i++) {
    const answer: string[] = [];
    for (let n = randomInt(0, 4); n > 0; n--) {
      const b = randomBytes(16);
      if (randomInt(2)) {
        // Plant a WKA at a random RFC 6052 position, sometimes with a non-zero u octet.
        const len = NAT64_PREFIX_LENGTHS[randomInt(NAT64_PREFIX_LENGTHS.length)];
        const planted = parseIPv6(synthesizeIPv6({ bytes: b, length: len }, WELL_KNOWN_IPV4[randomInt(2)]));
        if (randomInt(4) === 0) planted[8] = randomInt(1, 256);
        answer.push(formatIPv6(planted));
      } else answer.push(randomInt(8) ? formatIPv6(b) : b.toString('latin1'));
    }
    const found = prefixesFromAnswer(answer);
    for (const p of found) {
      assert.equal(p.bytes[8], 0);
      assert.ok(
        answer.some((a) => WELL_KNOWN_IPV4.includes(extractIPv4(p, a) as (typeof WELL_KNOWN_IPV4)[number])),
        `prefix ${formatNat64Prefix(p)} does not embed a WKA in ${answer.join(' ')}`,
      );
    }
  }
});
