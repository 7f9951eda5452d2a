/**
 * MagicSock across real kernel NATs (netlab): a relay with STUN on the "internet", two
 * nodes per scenario. Measures time to first packet (through the relay) and to a direct
 * path; checks the final path, and that a UDP-blocked node still gets through over TCP 443.
 */
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import type { DerpMap } from '../../src-main/protocol/derpmap.js';
import { type Host, type LabProcess, type Netlab, withLab } from '../netlab/netlab.js';

const AGENT = new URL('./agent.ts', import.meta.url).pathname;
const RELAY = new URL('./relay-main.ts', import.meta.url).pathname;

class Agent {
  private lines: string[] = [];
  private waiters: ((l: string) => void)[] = [];
  ready!: { nodeKey: string; discoKey: string; endpoints: string[] };
  constructor(
    readonly proc: LabProcess,
    readonly addr: string,
  ) {
    createInterface({ input: proc.child.stdout! }).on('line', (l) => {
      const w = this.waiters.shift();
      if (w) w(l);
      else this.lines.push(l);
    });
  }
  next(timeoutMs = 15_000): Promise<Record<string, unknown>> {
    const l = this.lines.shift();
    if (l) return Promise.resolve(JSON.parse(l));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.proc.name}: no reply; output:\n${this.proc.output}`)), timeoutMs);
      this.waiters.push((line) => {
        clearTimeout(t);
        resolve(JSON.parse(line));
      });
    });
  }
  async call(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.proc.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return this.next();
  }
  async status(peer: Agent): Promise<{ path: { kind: string; endpoint?: string }; received: number }> {
    return (await this.call({ cmd: 'status', peer: peer.ready.nodeKey })).status as never;
  }
}

async function startAgent(h: Host, derpMap: DerpMap, addr: string): Promise<Agent> {
  const p = h.node(AGENT, [], { name: 'agent', env: { ...process.env, PIERCE_DERPMAP: JSON.stringify(derpMap), PIERCE_ADDR: addr } });
  const a = new Agent(p, addr);
  a.ready = (await a.next()).ready as Agent['ready'];
  return a;
}

async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Row {
  scenario: string;
  firstMs: number;
  directMs: number | null;
  path: string;
}

async function runPair(lab: Netlab, relayHost: Host, x: Host, y: Host, expectDirect: boolean, name: string): Promise<Row> {
  const relay = relayHost.node(RELAY, [relayHost.addr], { name: 'relay' });
  const m = await relay.waitFor(/DERPMAP (.*)/);
  const derpMap = JSON.parse(m[1]) as DerpMap;
  const a = await startAgent(x, derpMap, '100.64.0.1');
  const b = await startAgent(y, derpMap, '100.64.0.2');
  await a.call({ cmd: 'peer', ...b.ready, addr: b.addr });
  await b.call({ cmd: 'peer', ...a.ready, addr: a.addr });
  const t0 = Date.now();
  await a.call({ cmd: 'send', dst: b.addr, from: 0, count: 1 });
  const first = await until(() => b.status(a), (s) => s.received >= 1, 10_000);
  assert.equal(first.received, 1, `${name}: the first packet arrives`);
  const firstMs = Date.now() - t0;
  let directMs: number | null = null;
  const st = await until(() => a.status(b), (s) => s.path.kind === 'direct', expectDirect ? 8_000 : 4_000);
  if (st.path.kind === 'direct') directMs = Date.now() - t0;
  for (let i = 0; i < 5; i++) {
    await a.call({ cmd: 'send', dst: b.addr, from: 1 + i * 100, count: 100 });
    await new Promise((r) => setTimeout(r, 20));
  }
  const done = await until(() => b.status(a), (s) => s.received >= 501, 10_000);
  assert.ok(done.received >= 495, `${name}: bulk packets arrive (${done.received}/501)`);
  void lab;
  return { scenario: name, firstMs, directMs, path: st.path.kind === 'direct' ? `direct ${st.path.endpoint}` : st.path.kind };
}

const scenarios: { name: string; expectDirect: boolean; build: (lab: Netlab) => void; pick: (lab: Netlab) => [Host, Host] }[] = [
  {
    name: 'public↔public',
    expectDirect: true,
    build: (lab) => {
      lab.publicHost({ name: 'x' });
      lab.publicHost({ name: 'y' });
    },
    pick: (lab) => [lab.hostNamed('x'), lab.hostNamed('y')],
  },
  {
    name: 'EIM↔EIM',
    expectDirect: true,
    build: (lab) => {
      lab.host({ name: 'x', lan: lab.router({ upstream: lab.internet(), nat: 'eim' }) });
      lab.host({ name: 'y', lan: lab.router({ upstream: lab.internet(), nat: 'eim' }) });
    },
    pick: (lab) => [lab.hostNamed('x'), lab.hostNamed('y')],
  },
  {
    name: 'EIM↔public',
    expectDirect: true,
    build: (lab) => {
      lab.host({ name: 'x', lan: lab.router({ upstream: lab.internet(), nat: 'eim' }) });
      lab.publicHost({ name: 'y' });
    },
    pick: (lab) => [lab.hostNamed('x'), lab.hostNamed('y')],
  },
  {
    name: 'same LAN',
    expectDirect: true,
    build: (lab) => {
      const r = lab.router({ upstream: lab.internet(), nat: 'eim' });
      lab.host({ name: 'x', lan: r });
      lab.host({ name: 'y', lan: r });
    },
    pick: (lab) => [lab.hostNamed('x'), lab.hostNamed('y')],
  },
  {
    name: 'UDP-blocked↔EIM',
    expectDirect: false,
    build: (lab) => {
      lab.host({ name: 'x', lan: lab.router({ upstream: lab.internet(), nat: 'udp-blocked' }) });
      lab.host({ name: 'y', lan: lab.router({ upstream: lab.internet(), nat: 'eim' }) });
    },
    pick: (lab) => [lab.hostNamed('x'), lab.hostNamed('y')],
  },
];

test('magicsock over real NATs: relay first, then direct where the NATs allow it', async (t) => {
  const rows: Row[] = [];
  for (const s of scenarios) {
    await withLab(
      `paths-${s.name}`,
      (lab) => {
        lab.publicHost({ name: 'relay' });
        s.build(lab);
      },
      async (lab) => {
        const [x, y] = s.pick(lab);
        const row = await runPair(lab, lab.hostNamed('relay'), x, y, s.expectDirect, s.name);
        rows.push(row);
        if (s.expectDirect) assert.match(row.path, /^direct /, `${s.name}: ends direct`);
        else assert.equal(row.path, 'relay', `${s.name}: stays on the relay`);
      },
    );
  }
  t.diagnostic('scenario            first packet   direct after   final path');
  for (const r of rows) t.diagnostic(`${r.scenario.padEnd(18)}  ${`${r.firstMs} ms`.padEnd(13)}  ${(r.directMs === null ? '—' : `${r.directMs} ms`).padEnd(13)}  ${r.path}`);
});
