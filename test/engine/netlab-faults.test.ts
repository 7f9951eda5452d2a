/**
 * Fault tests for the node daemon (issue #7): real `pierce control serve` and two real
 * `pierce daemon`s behind EIM NATs in netlab, with faults made by the kernel (iptables on a
 * router, a killed server process, a renumbered router). One lab serves all four tests, in
 * order, to keep the file's runtime modest; each test leaves the pair direct for the next.
 *
 * The relay is embedded in the coordination server, so "the server stops" also takes the
 * relay away: with the server down only direct paths can carry traffic, which is why the
 * server-down test runs on the direct path and the relay-restart test blocks it instead.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PeerStatus } from '../../src-main/protocol/localapi.js';
import { type Host, type LabProcess, type Netlab, type Router, withLab } from '../netlab/netlab.js';
import { CLI, LabControl, type LabNode, until } from './lab-nodes.js';
import { joinPair, transfer } from './matrix.js';

const MB = 1_000_000;
/** How long a lost direct path may take to be noticed and replaced by the relay: MagicSock's trust (6.5 s) plus a heartbeat. */
const FALLBACK_MS = 15_000;
/** The bound the task sets for the path to return to direct once it is possible again. */
const BACK_TO_DIRECT_MS = 15_000;
/**
 * After our NAT's public address changes: the path's trust lapses (6.5 s), the next
 * heartbeat (3 s) re-STUNs, and the call-me-maybe through the relay carries the new
 * address: ~10 s, with headroom for a loaded CI machine. The periodic re-STUN alone
 * (every 20 s) would take up to ~27 s.
 */
const ADDRESS_CHANGE_MS = 20_000;

interface Pair {
  lab: Netlab;
  control: LabControl;
  a: LabNode;
  b: LabNode;
  /** The routers in front of a and b. */
  ra: Router;
  rb: Router;
  ipA: string;
  ipB: string;
}

const routerOf = (h: Host): Router => {
  if (!h.opts.lan) throw new Error(`${h.name} has no router`);
  return h.opts.lan;
};

/**
 * Drops UDP between `r`'s LAN and `peerPublic` in both directions (in FORWARD, so before
 * SNAT and after de-NAT): the direct path dies, while TCP 443 to the relay and STUN to
 * the server still pass.
 */
async function setDirectBlocked(r: Router, peerPublic: string, blocked: boolean): Promise<void> {
  for (const dir of ['-s', '-d'])
    await r.exec(['iptables', '-w', ...(blocked ? ['-I', 'FORWARD', '1'] : ['-D', 'FORWARD']), '-p', 'udp', dir, peerPublic, '-j', 'DROP']);
}

/** ICMP echoes through the tunnel every 200 ms in the background: keeps both peers active, so discovery and heartbeats run. */
function keepPinging(from: LabNode, ip: string): LabProcess {
  return from.host.spawn(['ping', '-n', '-i', '0.2', ip], { name: `ping-${from.name}` });
}

const pathOf = async (n: LabNode, peer: string): Promise<PeerStatus['path']> => (await n.peer(peer)).path;

async function waitPath(n: LabNode, peer: string, kind: 'direct' | 'relay', ms: number, ok: (p: PeerStatus['path']) => boolean = () => true): Promise<PeerStatus['path']> {
  return until(() => pathOf(n, peer), (p) => p.kind === kind && ok(p), ms, `${n.name}: a ${kind} path to ${peer}`, 100);
}

async function bothDirect(p: Pair, ms = BACK_TO_DIRECT_MS): Promise<void> {
  await Promise.all([waitPath(p.a, 'b', 'direct', ms), waitPath(p.b, 'a', 'direct', ms)]);
}

/** `ping -c N -i 0.5` through the tunnel; the count of echo replies. */
async function pingCount(from: LabNode, ip: string, count: number): Promise<{ sent: number; received: number }> {
  const r = await from.host.exec(['ping', '-n', '-c', String(count), '-i', '0.5', '-W', '2', ip], { allowFail: true, timeoutMs: count * 1000 + 15_000 });
  const m = r.stdout.match(/(\d+) packets transmitted, (\d+) received/);
  if (!m) throw new Error(`ping printed no summary: ${r.stdout}${r.stderr}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

async function serverNodes(control: LabControl): Promise<{ name: string; online: boolean; endpoints: string[] }[]> {
  return (await control.admin<{ nodes: { name: string; online: boolean; endpoints: string[] }[] }>('GET', '/api/nodes')).nodes;
}

test('netlab faults: path cut, relay restart, server down, public address change', async (t) => {
  await withLab(
    'faults',
    (lab) => {
      lab.publicHost({ name: 'control' });
      const inet = lab.internet();
      lab.host({ name: 'x', lan: lab.router({ upstream: inet, nat: 'eim', name: 'rx' }) });
      lab.host({ name: 'y', lan: lab.router({ upstream: inet, nat: 'eim', name: 'ry' }) });
    },
    async (lab) => {
      const x = lab.hostNamed('x');
      const y = lab.hostNamed('y');
      const control = await LabControl.start(lab, lab.hostNamed('control'));
      const { a, b } = await joinPair(lab, control, x, y);
      const p: Pair = { lab, control, a, b, ra: routerOf(x), rb: routerOf(y), ipA: await a.ip(), ipB: await b.ip() };
      // A failing subtest does not fail withLab's callback, so print the daemons' logs here.
      const step = (name: string, fn: (p: Pair) => Promise<void>) =>
        t.test(name, async () => {
          try {
            await fn(p);
          } catch (err) {
            process.stderr.write(`netlab faults: "${name}" failed; process logs:\n${lab.logs()}\n`);
            throw err;
          }
        });
      const pinger = keepPinging(a, p.ipB);
      try {
        await bothDirect(p);
        await step('direct path cut mid-transfer: continues on the relay intact, returns to direct', directPathCut);
        await step('relay restart: both clients reconnect, relayed traffic resumes', relayRestart);
        await step('coordination server down: direct tunnels keep carrying traffic; streams reconnect', serverDown);
        await step('public address change: the node re-STUNs, republishes and the pair is direct again', addressChange);
      } finally {
        await pinger.kill();
      }
    },
  );
});

async function directPathCut(p: Pair): Promise<void> {
  const { a, b, ra, rb } = p;
  const size = 24 * MB;
  const file = join(p.lab.tempDir('xfer'), 'payload');
  writeFileSync(file, randomBytes(size));
  const rx0 = (await b.peer('a')).rxBytes;
  const xfer = transfer(a, b, file, 5001, 170_000);
  xfer.catch(() => undefined);
  let blocked = false;
  try {
    await until(() => b.peer('a'), (s) => s.rxBytes - rx0 > size / 5, 60_000, 'a fifth of the transfer on the direct path');
    assert.equal((await pathOf(a, 'b')).kind, 'direct', 'the transfer started on the direct path');
    await setDirectBlocked(ra, rb.wanAddr, true);
    blocked = true;
    const [pa] = await Promise.all([waitPath(a, 'b', 'relay', FALLBACK_MS), waitPath(b, 'a', 'relay', FALLBACK_MS)]);
    // What the user sees: `pierce status` names the relay.
    const cli = await a.host.exec([process.execPath, '--import', 'tsx', CLI, 'status', '--socket', a.socket], { timeoutMs: 60_000 });
    assert.match(cli.stdout, /\bb\b.*relay "embedded"/, `pierce status should show b via the relay:\n${cli.stdout}`);
    // The transfer carries on while only the relay can carry it.
    const onRelay = (await b.peer('a')).rxBytes;
    await until(() => b.peer('a'), (s) => s.rxBytes - onRelay > 2 * MB, 60_000, '2 MB more of the transfer through the relay');
    assert.equal((await pathOf(a, 'b')).kind, 'relay', `still on the relay (was ${JSON.stringify(pa)})`);
    blocked = false;
    await setDirectBlocked(ra, rb.wanAddr, false);
    const t0 = Date.now();
    await bothDirect(p);
    const backMs = Date.now() - t0;
    const r = await xfer;
    assert.equal(r.bytes, size, 'every byte arrived');
    assert.ok(r.ok, 'SHA-256 of what arrived matches what was sent');
    process.stderr.write(`faults: direct path cut: back to direct ${backMs} ms after unblocking; ${size / MB} MB in ${r.ms} ms\n`);
  } finally {
    if (blocked) await setDirectBlocked(ra, rb.wanAddr, false);
  }
}

async function relayRestart(p: Pair): Promise<void> {
  const { a, b, ra, rb, ipA, ipB } = p;
  await setDirectBlocked(ra, rb.wanAddr, true);
  try {
    await Promise.all([waitPath(a, 'b', 'relay', FALLBACK_MS), waitPath(b, 'a', 'relay', FALLBACK_MS)]);
    assert.ok(await a.ping(ipB, 5), 'relayed traffic flows before the restart');
    p.control = await p.control.restart(p.lab);
    const t0 = Date.now();
    // Both directions: the relay forwards only to connected clients, so answers in both prove both reconnected.
    await until(async () => (await a.ping(ipB, 1)) && (await b.ping(ipA, 1)), (ok) => ok, 30_000, 'pings both ways through the restarted relay', 0);
    process.stderr.write(`faults: relay restart: relayed traffic resumed ${Date.now() - t0} ms after the new server was up\n`);
    assert.equal((await pathOf(a, 'b')).kind, 'relay', 'traffic resumed on the relay (the direct path is still blocked)');
  } finally {
    await setDirectBlocked(ra, rb.wanAddr, false);
  }
  await bothDirect(p);
}

async function serverDown(p: Pair): Promise<void> {
  const { a, b, ipB } = p;
  await bothDirect(p);
  const before = await serverNodes(p.control);
  assert.ok(before.every((n) => n.online), 'both nodes online at the server before it stops');
  const file = join(p.lab.tempDir('xfer-down'), 'payload');
  writeFileSync(file, randomBytes(4 * MB));
  await p.control.stop();
  const stoppedAt = Date.now();
  let downMs: number;
  try {
    // ≥ 10 s of traffic with no server and no relay: 24 echoes 0.5 s apart, and a TCP transfer meanwhile.
    const [pings, r] = await Promise.all([pingCount(a, ipB, 24), transfer(a, b, file, 5002, 60_000)]);
    downMs = Date.now() - stoppedAt;
    assert.ok(downMs >= 10_000, `the server was down for ${downMs} ms`);
    assert.ok(pings.received >= pings.sent - 1, `echoes answered with the server down: ${pings.received}/${pings.sent}`);
    assert.ok(r.ok && r.bytes === 4 * MB, `a 4 MB transfer with the server down arrived intact (${r.bytes} bytes, sha256 ${r.ok ? 'ok' : 'MISMATCH'})`);
    assert.equal((await pathOf(a, 'b')).kind, 'direct', 'still direct with the server down');
  } finally {
    // Back up on the same data dir (also when an assertion failed, so the next test has a server).
    p.control = await p.control.restart(p.lab);
  }
  // Both nodes' streams reconnect on their own back-off, and the server sees them online again.
  const t0 = Date.now();
  await until(() => serverNodes(p.control), (ns) => ns.length === 2 && ns.every((n) => n.online), 40_000, 'both nodes online at the restarted server', 250);
  await until(async () => [await a.peer('b'), await b.peer('a')], ([pb, pa]) => pb.online && pa.online, 10_000, 'each node shows the other online');
  process.stderr.write(`faults: server down ${downMs} ms; streams back ${Date.now() - t0} ms after the restart\n`);
}

/**
 * Renumbers a's router's WAN address: a cannot see it (its own interfaces do not change),
 * the router's MASQUERADE picks the new address and the kernel drops the old mappings.
 * The direct path dies; a must notice that its STUN address moved, publish it, and tell
 * b through the relay, so the pair punches through again.
 */
async function addressChange(p: Pair): Promise<void> {
  const { a, b, ra } = p;
  await bothDirect(p);
  const oldAddr = ra.wanAddr;
  const newAddr = '198.51.100.200';
  // Old address first: deleting a primary address also deletes the secondaries of its subnet.
  await ra.exec(['ip', 'addr', 'del', `${oldAddr}/24`, 'dev', 'wan']);
  await ra.exec(['ip', 'addr', 'add', `${newAddr}/24`, 'dev', 'wan']);
  await ra.exec(['ip', 'route', 'replace', 'default', 'via', '198.51.100.1', 'dev', 'wan', 'onlink']);
  ra.wanAddr = newAddr;
  const t0 = Date.now();
  const pb = await waitPath(b, 'a', 'direct', 45_000, (path) => path.kind === 'direct' && path.endpoint.startsWith(`${newAddr}:`));
  const ms = Date.now() - t0;
  await waitPath(a, 'b', 'direct', 5_000);
  process.stderr.write(`faults: address change ${oldAddr} → ${newAddr}: direct again (${JSON.stringify(pb)}) after ${ms} ms\n`);
  const nodes = await serverNodes(p.control);
  assert.ok(nodes.find((n) => n.name === 'a')?.endpoints.some((e) => e.startsWith(`${newAddr}:`)), `the server has a's new public address: ${JSON.stringify(nodes)}`);
  assert.ok(await a.ping(p.ipB, 5), 'traffic flows after the address change');
  const moved = new RegExp(`public address moved: [^\\n]*${oldAddr.replaceAll('.', '\\.')}:\\d+[^\\n]* → [^\\n]*${newAddr.replaceAll('.', '\\.')}:\\d+[^\\n]* \\((.+)\\)`).exec(a.proc.output);
  assert.ok(moved, `a logged that its public address moved; its log ends:\n${a.proc.output.slice(-3000)}`);
  process.stderr.write(`faults: a noticed the move: ${moved[1]}\n`);
  assert.ok(ms < ADDRESS_CHANGE_MS, `direct again within ${ADDRESS_CHANGE_MS} ms of the change (took ${ms} ms); a's log ends:\n${a.proc.output.slice(-3000)}`);
}
