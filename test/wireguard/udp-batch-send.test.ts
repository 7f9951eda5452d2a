/**
 * Batched UDP sends (native/linux-sendmmsg.ts through UdpBind): every datagram arrives intact
 * and in order whether it went out alone, in a sendmmsg(2) batch or inside a UDP GSO run, on
 * both address families; failures fall back or drop without throwing.
 */
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { type Socket, createSocket } from 'node:dgram';
import { test } from 'node:test';
import { SendmmsgSender, encodeSockaddr } from '../../native/linux-sendmmsg.js';
import { UdpBind, parseUdpEndpoint } from '../../src-main/wireguard/udp-bind.js';
import { until } from './fakes.js';

async function receiver(type: 'udp4' | 'udp6', host: string): Promise<{ sock: Socket; got: Buffer[]; port: number }> {
  const sock = createSocket({ type, ipv6Only: type === 'udp6' });
  const got: Buffer[] = [];
  sock.on('message', (m) => got.push(m));
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  // Room for every datagram of a test burst, so none is dropped for want of buffer.
  sock.setRecvBufferSize(4 << 20);
  return { sock, got, port: sock.address().port };
}

/** Datagrams whose sizes mix GSO runs (equal sizes), singletons and an empty one; each starts with its index. */
function burst(): Uint8Array[] {
  const sizes = [...Array(70).fill(1312), 100, 100, 1312, 0, 64, ...Array(5).fill(548), 1500, 9000];
  return sizes.map((n, i) => {
    const d = randomFillSync(new Uint8Array(n));
    if (n >= 2) new DataView(d.buffer).setUint16(0, i);
    return d;
  });
}

test('sockaddr encoding follows struct sockaddr_in / sockaddr_in6 (port in network byte order)', () => {
  assert.deepEqual([...encodeSockaddr(Uint8Array.of(192, 0, 2, 1), 51820)], [2, 0, 0xca, 0x6c, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const v6 = encodeSockaddr(Uint8Array.from({ length: 16 }, (_, i) => i), 1);
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.subarray(0, 8)], [10, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual([...v6.subarray(8, 24)], Array.from({ length: 16 }, (_, i) => i));
  assert.throws(() => encodeSockaddr(new Uint8Array(5), 1), RangeError);
});

for (const [type, host] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
  for (const mode of ['gso', 'sendmmsg', 'dgram'] as const) {
    test(`UdpBind ${mode} (${host}): a mixed burst arrives intact and in order`, async () => {
      const rx = await receiver(type, host);
      const bind = new UdpBind({ host4: '127.0.0.1', host6: '::1', sendmmsg: mode !== 'dgram', gso: mode === 'gso' });
      try {
        await bind.open(() => {});
        const sent = burst();
        bind.send(sent, parseUdpEndpoint(type === 'udp6' ? `[::1]:${rx.port}` : `127.0.0.1:${rx.port}`));
        await until(() => rx.got.length >= sent.length, 5000, 'every datagram');
        assert.equal(rx.got.length, sent.length);
        for (let i = 0; i < sent.length; i++) assert.deepEqual(new Uint8Array(rx.got[i]), sent[i], `datagram ${i}`);
      } finally {
        await bind.close();
        rx.sock.close();
      }
    });
  }
}

test('SendmmsgSender: GSO runs count as their datagrams; a refused destination reports errno and never throws', async (t) => {
  const rx = await receiver('udp4', '127.0.0.1');
  const tx = createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  const fd = (Object.getOwnPropertySymbols(tx).map((k) => (tx as unknown as Record<symbol, { handle?: { fd?: number } }>)[k]).find((s) => s?.handle?.fd !== undefined))?.handle?.fd;
  const sender = SendmmsgSender.create(fd ?? -1);
  if (!sender) {
    rx.sock.close();
    tx.close();
    if (process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')) assert.fail('sendmmsg(2) should be available on 64-bit Linux');
    t.diagnostic('sendmmsg(2) is Linux-only; nothing to test on this platform');
    return;
  }
  try {
    const ds = Array.from({ length: 150 }, (_, i) => new Uint8Array(1000).fill(i));
    const r = sender.send(ds, 10, encodeSockaddr(Uint8Array.of(127, 0, 0, 1), rx.port));
    assert.deepEqual(r, { sent: 140, errno: 0 });
    assert.ok(sender.usesGso, 'this kernel takes UDP_SEGMENT on loopback');
    await until(() => rx.got.length >= 140, 5000, 'every datagram');
    assert.deepEqual(rx.got.map((g) => g[0]), Array.from({ length: 140 }, (_, i) => (i + 10) & 0xff));
    // Port 0 is never a valid destination: the kernel refuses the first message with EINVAL.
    const refused = sender.send(ds.slice(0, 3), 0, encodeSockaddr(Uint8Array.of(127, 0, 0, 1), 0));
    assert.equal(refused.sent, 0);
    assert.notEqual(refused.errno, 0);
  } finally {
    sender.close();
    assert.deepEqual(sender.send([new Uint8Array(1)], 0, encodeSockaddr(Uint8Array.of(127, 0, 0, 1), rx.port)), { sent: 0, errno: 0 }, 'a closed sender sends nothing');
    rx.sock.close();
    tx.close();
  }
});

for (const mode of ['gso', 'sendmmsg', 'dgram'] as const) {
  test(`UdpBind ${mode}: a datagram the kernel refuses (EMSGSIZE) is dropped, the rest still go out in order`, async () => {
    const rx = await receiver('udp4', '127.0.0.1');
    const bind = new UdpBind({ host4: '127.0.0.1', ipv6: false, sendmmsg: mode !== 'dgram', gso: mode === 'gso' });
    try {
      await bind.open(() => {});
      // 70000 bytes exceed the 65507-byte UDP/IPv4 payload limit.
      const ds = [Uint8Array.of(1), Uint8Array.of(2), new Uint8Array(70_000), Uint8Array.of(3), Uint8Array.of(4)];
      assert.doesNotThrow(() => bind.send(ds, parseUdpEndpoint(`127.0.0.1:${rx.port}`)));
      await until(() => rx.got.length === 4, 5000, 'the four valid datagrams');
      assert.deepEqual(rx.got.map((g) => [...g]), [[1], [2], [3], [4]]);
    } finally {
      await bind.close();
      rx.sock.close();
    }
  });
}
