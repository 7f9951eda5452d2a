/**
 * Birthday-paradox building blocks on loopback: the easy side's rate and budgets, the hard
 * side's socket lifecycle (send from every socket, keep the answered one, close the rest,
 * close all at the end of the lifetime), both-hard being off by default, and the seed's
 * probability table. The real NAT test is hardnat-netlab.test.ts.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { BirthdayProber, birthdaySuccessProbability, BothHardProber, HardNatDisabledError, hardNatRole, HardSide } from '../../../src-main/magicsock/hardnat.js';

const probe = new Uint8Array([1, 2, 3]);

test('the seed table: 174 probes ≈ 50 %, 256 ≈ 64 %, 1024 ≈ 98 %, 2048 ≈ 99.9 % with 256 open ports', () => {
  const p = (n: number) => birthdaySuccessProbability(256, n);
  assert.ok(Math.abs(p(174) - 0.5) < 0.01, String(p(174)));
  assert.ok(Math.abs(p(256) - 0.64) < 0.01, String(p(256)));
  assert.ok(Math.abs(p(1024) - 0.98) < 0.01, String(p(1024)));
  assert.ok(p(2048) > 0.999, String(p(2048)));
  assert.equal(birthdaySuccessProbability(256, 0), 0);
});

test('easy side: distinct random ports in range, never faster than the rate, stops at the probe budget', async () => {
  const sends: { port: number; t: number }[] = [];
  const t0 = performance.now();
  const prober = new BirthdayProber({
    target: '192.0.2.1',
    probe: (port) => new Uint8Array([port >> 8, port & 255]),
    send: (data, ip, port) => {
      assert.equal(ip, '192.0.2.1');
      assert.deepEqual([...data], [port >> 8, port & 255]);
      sends.push({ port, t: performance.now() - t0 });
    },
    ratePerSec: 200,
    maxProbes: 40,
    answerGraceMs: 50,
    portRange: { min: 20000, max: 20100 },
    skipPorts: [20000, 20001],
  });
  const r = await prober.result;
  assert.equal(r.success, false);
  assert.equal(r.reason, 'probes');
  assert.equal(r.probesSent, 40);
  assert.equal(sends.length, 40);
  assert.equal(new Set(sends.map((s) => s.port)).size, 40, 'no port probed twice');
  for (const s of sends) assert.ok(s.port >= 20002 && s.port <= 20100, `port ${s.port} in range and not skipped`);
  // 40 probes at 200/s: the last one no earlier than 39 / 200 s after the start.
  for (const [i, s] of sends.entries()) assert.ok(s.t >= (i * 1000) / 200 - 5, `probe ${i} at ${s.t.toFixed(1)} ms is ahead of the rate`);
});

test('easy side: an answer stops it at once; the time budget stops it too', async () => {
  let sent = 0;
  const prober = new BirthdayProber({ target: '192.0.2.1', probe, send: () => sent++, ratePerSec: 1000 });
  await new Promise((r) => setTimeout(r, 50));
  prober.answered(4242);
  const r = await prober.result;
  assert.equal(r.success, true);
  assert.equal(r.port, 4242);
  assert.equal(r.reason, 'answered');
  const at = sent;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(sent, at, 'no probe after the answer');
  assert.equal(r.probesSent, at);

  const slow = new BirthdayProber({ target: '192.0.2.1', probe, send: () => {}, ratePerSec: 10, maxTimeMs: 250 });
  const rs = await slow.result;
  assert.equal(rs.reason, 'time');
  assert.ok(rs.probesSent <= 4, `${rs.probesSent} probes in 250 ms at 10/s`);
  assert.throws(() => new BirthdayProber({ target: '192.0.2.1', probe, send: () => {}, ratePerSec: 0 }), RangeError);
});

function peer(): Promise<Socket> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => resolve(s));
  });
}

test('hard side: one probe from each socket to the peer; the answered socket is kept, the rest closed', async () => {
  const p = await peer();
  const from = new Map<number, Buffer>();
  const got = new Promise<void>((resolve) =>
    p.on('message', (m, r) => {
      from.set(r.port, m);
      if (from.size === 16) resolve();
    }),
  );
  const received: string[] = [];
  const hard = await HardSide.open({
    peer: { ip: '127.0.0.1', port: p.address().port },
    probe: (port) => Buffer.from(`probe ${port.index}`),
    sockets: 16,
    bindAddress: '127.0.0.1',
    onPacket: (data, src, via) => {
      received.push(`${data.toString()} from ${src.port} on ${via.localPort}`);
      hard.answered(via);
    },
  });
  try {
    await got;
    assert.equal(hard.openSockets, 16);
    assert.deepEqual(new Set(hard.ports.map((x) => x.localPort)), new Set(from.keys()), 'every socket sent, each from its own port');
    const [winnerPort, msg] = [...from.entries()][5];
    p.send('pong', winnerPort, '127.0.0.1');
    const r = await hard.result;
    assert.equal(r.success, true);
    assert.equal(r.port, winnerPort);
    assert.equal(r.probesSent, 16);
    assert.deepEqual(received, [`pong from ${p.address().port} on ${winnerPort}`]);
    assert.match(msg.toString(), /^probe \d+$/);
    assert.equal(hard.openSockets, 1, 'only the answered socket stays open');
    const adopted = hard.adopt();
    assert.ok(adopted);
    assert.equal(adopted.address().port, winnerPort);
    assert.equal(hard.openSockets, 0);
    adopted.close();
  } finally {
    hard.close();
    p.close();
  }
});

test('hard side: re-sends to keep mappings, and closes every socket when its lifetime ends', async () => {
  const p = await peer();
  let n = 0;
  p.on('message', () => n++);
  const hard = await HardSide.open({ peer: { ip: '127.0.0.1', port: p.address().port }, probe, sockets: 8, bindAddress: '127.0.0.1', lifetimeMs: 330, resendIntervalMs: 100 });
  const r = await hard.result;
  await new Promise((res) => setTimeout(res, 50));
  p.close();
  assert.equal(r.success, false);
  assert.equal(r.reason, 'time');
  assert.equal(hard.openSockets, 0, 'all sockets closed');
  // 8 at the start and 8 per re-send: at least one re-send, at most three (timers may run late, never early).
  assert.ok(r.probesSent % 8 === 0 && r.probesSent >= 16 && r.probesSent <= 32, `${r.probesSent} sends`);
  assert.equal(n, r.probesSent, 'the peer got every send');
});

test('both-hard is off unless enabled, and bounded when it is', async () => {
  await assert.rejects(BothHardProber.open({ enabled: false, target: '127.0.0.1', probe }), HardNatDisabledError);
  const p = await peer();
  const targetPort = p.address().port;
  const both = await BothHardProber.open({
    enabled: true,
    target: '127.0.0.1',
    probe,
    sockets: 4,
    bindAddress: '127.0.0.1',
    ratePerSec: 1000,
    maxProbes: 20000,
    portRange: { min: targetPort, max: targetPort },
    onPacket: (_d, src, via) => both.answered(src.port, via),
  });
  p.on('message', (m, r) => p.send(m, r.port, r.address));
  const r = await both.result;
  p.close();
  assert.equal(r.success, true, 'the only port in range answers');
  assert.equal(r.port, targetPort);
  assert.equal(r.probesSent, 1, 'the port range bounds the budget');
  assert.equal(both.openSockets, 1);
  both.adopt()?.close();
  both.close();
  assert.equal(both.openSockets, 0);
});

test('roles from both sides\u2019 mapping behaviour', () => {
  assert.equal(hardNatRole(false, false), 'none');
  assert.equal(hardNatRole(true, false), 'hard');
  assert.equal(hardNatRole(false, true), 'easy');
  assert.equal(hardNatRole(undefined, true), 'easy');
  assert.equal(hardNatRole(true, true), 'both-hard-disabled');
  assert.equal(hardNatRole(true, true, true), 'both-hard');
});
