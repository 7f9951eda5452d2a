/**
 * DERP across real kernel NATs (netlab): a relay on the lab internet serving DERP on
 * TCP 443 and STUN on UDP 3478; one client behind a `udp-blocked` router, one behind an
 * `eim` router. The test first shows UDP really is blocked for the first client (its
 * STUN probe gets no answer while the EIM client's does), then has both exchange
 * packets through the relay and checks, from the relay's own socket table, that both
 * arrived over TCP 443 from their routers' public addresses.
 */
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { type Host, type LabProcess, withLab } from '../netlab/netlab.js';

const AGENT = new URL('./netlab-agent.ts', import.meta.url).pathname;
const STUN_PROBE = new URL('../netlab/stun-probe.ts', import.meta.url).pathname;
const PACKETS = 300;
const SIZE = 1200;

/** A netlab-agent process: JSON lines in, JSON lines out. */
class Agent {
  private lines: Record<string, unknown>[] = [];
  private waiters: ((v: Record<string, unknown>) => void)[] = [];

  constructor(readonly proc: LabProcess) {
    createInterface({ input: proc.child.stdout! }).on('line', (l) => {
      const v = JSON.parse(l) as Record<string, unknown>;
      const w = this.waiters.shift();
      if (w) w(v);
      else this.lines.push(v);
    });
  }

  static async start(h: Host, args: string[]): Promise<{ agent: Agent; ready: Record<string, string> }> {
    const agent = new Agent(h.node(AGENT, args, { name: `derp-${args[0]}` }));
    const first = await agent.next();
    assert.ok(first.ready, `${agent.proc.name} did not start: ${JSON.stringify(first)}`);
    return { agent, ready: first.ready as Record<string, string> };
  }

  next(timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const have = this.lines.shift();
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.proc.name}: no reply; output:\n${this.proc.output}`)), timeoutMs);
      this.waiters.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  }

  call(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.proc.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next();
  }
}

interface ClientStatus {
  received: number;
  intact: number;
  bytes: number;
  from: string[];
  connected: boolean;
}

async function statusWhen(a: Agent, ok: (s: ClientStatus) => boolean, ms: number): Promise<ClientStatus> {
  const end = Date.now() + ms;
  for (;;) {
    const s = (await a.call({ cmd: 'status' })).status as ClientStatus;
    if (ok(s) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stunProbe(h: Host, server: string): Promise<string | null> {
  const p = h.node(STUN_PROBE, [server], { name: 'stun-probe' });
  assert.equal(await p.exited, 0, `stun-probe failed: ${p.output}`);
  const res = JSON.parse(p.output.trim().split('\n').pop()!) as { mapped: Record<string, string | null> };
  return res.mapped[server];
}

test('derp over netlab: a UDP-blocked client and an EIM client exchange packets through the relay on TCP 443', async () => {
  await withLab(
    'derp-udp-blocked',
    (lab) => {
      const inet = lab.internet();
      lab.publicHost({ name: 'relay' });
      lab.host({ name: 'blocked', lan: lab.router({ upstream: inet, nat: 'udp-blocked', name: 'udp-blocked' }) });
      lab.host({ name: 'eim', lan: lab.router({ upstream: inet, nat: 'eim', name: 'eim' }) });
    },
    async (lab) => {
      const [relayHost, blocked, eim] = ['relay', 'blocked', 'eim'].map((n) => lab.hostNamed(n));
      const relay = await Agent.start(relayHost, ['relay', relayHost.addr]);
      const url = relay.ready.url;
      assert.equal(url, `http://${relayHost.addr}:443/derp`);

      // UDP is really blocked behind the udp-blocked router, not just unanswered: the same
      // probe from behind the EIM router gets the relay's STUN answer.
      const stun = `${relayHost.addr}:3478`;
      assert.equal(await stunProbe(blocked, stun), null, 'no STUN answer through the udp-blocked router');
      const eimMapped = await stunProbe(eim, stun);
      assert.ok(eimMapped, 'the EIM client gets a STUN answer from the same server');
      assert.equal(eimMapped.split(':')[0], eim.publicAddr);
      const relayStats0 = (await relay.agent.call({ cmd: 'stats' })) as { stunAnswered: number };
      assert.equal(relayStats0.stunAnswered >= 1, true);

      const x = await Agent.start(blocked, ['client', url]);
      const y = await Agent.start(eim, ['client', url]);
      const [xKey, yKey] = [x.ready.key, y.ready.key];
      assert.deepEqual(await x.agent.call({ cmd: 'send', dst: yKey, from: 0, count: PACKETS, size: SIZE }), { sent: PACKETS });
      assert.deepEqual(await y.agent.call({ cmd: 'send', dst: xKey, from: 0, count: PACKETS, size: SIZE }), { sent: PACKETS });
      const atY = await statusWhen(y.agent, (s) => s.received >= PACKETS, 10_000);
      const atX = await statusWhen(x.agent, (s) => s.received >= PACKETS, 10_000);
      for (const [who, s, from] of [['eim client', atY, xKey], ['udp-blocked client', atX, yKey]] as const) {
        assert.equal(s.received, PACKETS, `${who}: every packet arrives (TCP does not lose them)`);
        assert.equal(s.intact, PACKETS, `${who}: every byte intact`);
        assert.equal(s.bytes, PACKETS * SIZE);
        assert.deepEqual(s.from, [from], `${who}: the relay names the true sender`);
      }

      // Both clients' connections, as the relay's kernel sees them: TCP to port 443, from
      // the routers' public (NAT) addresses.
      const ss = await relayHost.exec(['ss', '-Htn', 'state', 'established', '( sport = :443 )']);
      const peers = ss.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).pop()!.replace(/:\d+$/, ''));
      assert.ok(peers.includes(blocked.publicAddr), `a TCP 443 connection from the udp-blocked router ${blocked.publicAddr}: ${ss.stdout}`);
      assert.ok(peers.includes(eim.publicAddr), `a TCP 443 connection from the EIM router ${eim.publicAddr}: ${ss.stdout}`);
      const { stats } = (await relay.agent.call({ cmd: 'stats' })) as { stats: { clients: number; packetsForwarded: number; protocolErrors: number } };
      assert.equal(stats.clients, 2);
      assert.equal(stats.packetsForwarded, 2 * PACKETS);
      assert.equal(stats.protocolErrors, 0);
      await Promise.all([x.agent.proc.kill(), y.agent.proc.kill(), relay.agent.proc.kill()]);
    },
  );
});
