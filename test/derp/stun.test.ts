import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { StunServer } from '../../src-main/derp/stun-server.js';
import {
  bindingRequest, encodeXorMappedAddress, parseBindingResponse, parseStun, parseXorMappedAddress, StunParseError,
} from '../../src-main/derp/stun.js';

async function ask(serverPort: number, host: string, request?: Buffer): Promise<{ reply: Buffer | null; localPort: number; txId: Uint8Array }> {
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, host, () => r()));
  const txId = new Uint8Array(randomBytes(12));
  const reply = await new Promise<Buffer | null>((resolve) => {
    const t = setTimeout(() => resolve(null), 500);
    sock.once('message', (m) => {
      clearTimeout(t);
      resolve(m);
    });
    sock.send(request ?? bindingRequest(txId), serverPort, host);
  });
  const localPort = sock.address().port;
  sock.close();
  return { reply, localPort, txId };
}

test('stun server: Binding success with the right XOR-MAPPED-ADDRESS over IPv4 and IPv6', async () => {
  const server = await StunServer.listen({ port: 0 });
  try {
    for (const host of ['127.0.0.1', '::1']) {
      const { reply, localPort, txId } = await ask(server.port, host);
      assert.ok(reply, `no answer over ${host}`);
      const mapped = parseBindingResponse(reply, txId);
      assert.deepEqual({ ip: mapped.ip, port: mapped.port }, { ip: host, port: localPort });
    }
  } finally {
    server.close();
  }
});

test('stun server: answers coturn\'s turnutils_stunclient (a foreign client)', async () => {
  const server = await StunServer.listen({ port: 0 });
  try {
    for (const host of ['127.0.0.1', '::1']) {
      const out = await new Promise<string>((resolve, reject) => {
        execFile('turnutils_stunclient', ['-p', String(server.port), host], { timeout: 5000 }, (err, stdout) => {
          if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error('turnutils_stunclient not found: install the Debian package "coturn"'));
          else if (err) reject(err);
          else resolve(stdout);
        });
      });
      const m = /UDP reflexive addr: (.+):(\d+)/.exec(out);
      assert.ok(m, `unexpected output: ${out}`);
      assert.equal(m[1], host);
      assert.ok(Number(m[2]) > 0);
    }
    assert.ok(server.answered >= 2);
  } finally {
    server.close();
  }
});

test('stun: the §15.2 XOR encoding round-trips, including IPv6 zero compression', () => {
  const txId = new Uint8Array(randomBytes(12));
  for (const [ip, port] of [['192.0.2.1', 32853], ['2001:db8::1', 3478], ['::1', 1], ['2001:db8:0:1:1:1:1:1', 65535]] as const) {
    assert.deepEqual(parseXorMappedAddress(encodeXorMappedAddress(ip, port, txId), txId), { ip, port });
  }
  // RFC 5769 §2.2 sample response: 192.0.2.1:32853 with this transaction id encodes as below.
  const rfcTx = Buffer.from('b7e7a701bc34d686fa87dfae', 'hex');
  assert.equal(Buffer.from(encodeXorMappedAddress('192.0.2.1', 32853, rfcTx)).toString('hex'), '0001a147e112a643');
});

test('stun fuzz: random and mutated datagrams never crash the parser or the server', async () => {
  const valid = bindingRequest(new Uint8Array(12));
  for (let i = 0; i < 20_000; i++) {
    const buf = i % 2 ? randomBytes(Math.floor(Math.random() * 64)) : Buffer.from(valid);
    if (i % 2 === 0) for (let j = 0; j < 3; j++) buf[Math.floor(Math.random() * buf.length)] = Math.floor(Math.random() * 256);
    try {
      parseStun(buf);
    } catch (err) {
      assert.ok(err instanceof StunParseError, `unexpected ${(err as Error).name}`);
    }
  }
  const server = await StunServer.listen({ port: 0, host: '127.0.0.1' });
  try {
    const sock = dgram.createSocket('udp4');
    for (let i = 0; i < 300; i++) sock.send(randomBytes(Math.floor(Math.random() * 100)), server.port, '127.0.0.1');
    // Wrong cookie, and a length field that lies: both dropped.
    const badCookie = Buffer.from(valid);
    badCookie[4] ^= 1;
    sock.send(badCookie, server.port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 200));
    sock.close();
    const { reply } = await ask(server.port, '127.0.0.1');
    assert.ok(reply, 'server still answers after the fuzz');
    assert.ok(server.dropped > 250);
  } finally {
    server.close();
  }
});
