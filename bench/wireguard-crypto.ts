/**
 * Micro-benchmark of the WireGuard transport AEAD backends and of the Device's per-packet
 * path, in-process (no sockets, no TUN):
 *   node --import tsx bench/wireguard-crypto.ts
 * Prints medians of 5 runs and ratios against the node:crypto backend. The end-to-end
 * comparison against wireguard-go lives in the dataplane benchmark (bench/dataplane).
 */
import { type AeadBackend, nobleAead, nodeAead, sodiumAead } from '../src-main/wireguard/aead.js';
import type { Bind, BindEndpoint, ReceivedDatagram } from '../src-main/wireguard/bind.js';
import { Device } from '../src-main/wireguard/device.js';
import type { TunDevice } from '../src-main/wireguard/tun.js';
import { generateKeyPair } from '../src-main/protocol/keys.js';
import { randomFillSync } from 'node:crypto';

const RUNS = 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function sealOpenMBps(b: AeadBackend, size: number, op: 'seal' | 'open'): number {
  const key = b.importKey(randomFillSync(new Uint8Array(32)));
  const plain = randomFillSync(new Uint8Array(size));
  const sealed = new Uint8Array(size + 16);
  const back = new Uint8Array(size);
  b.seal(key, 0, plain, sealed, 0);
  const budgetMs = 300;
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs) {
    for (let i = 0; i < 64; i++, n++) {
      if (op === 'seal') b.seal(key, n, plain, sealed, 0);
      else if (b.open(key, 0, sealed, back, 0) < 0) throw new Error('open failed');
    }
  }
  return (n * size) / 1e6 / ((performance.now() - t0) / 1000);
}

class PipeEndpoint implements BindEndpoint {
  constructor(readonly name: string) {}
  toString() {
    return this.name;
  }
}

/** Two binds wired back to back; delivery is deferred a turn, like a socket. */
function pipe(): [Bind, Bind] {
  const handlers: ((d: ReceivedDatagram[]) => void)[] = [];
  const mk = (me: number, name: string): Bind => ({
    port: undefined,
    open: async (cb) => void (handlers[me] = cb),
    send: (ds) => {
      const from = new PipeEndpoint(name);
      setImmediate(() => handlers[1 - me]?.(ds.map((data) => ({ data, from }))));
    },
    parseEndpoint: (t) => new PipeEndpoint(t),
    close: async () => {},
  });
  return [mk(0, 'a'), mk(1, 'b')];
}

class SinkTun implements TunDevice {
  readonly name = 'bench';
  readonly mtu = 1420;
  received = 0;
  onPackets: ((p: Uint8Array[]) => void) | undefined;
  start(cb: (p: Uint8Array[]) => void) {
    this.onPackets = cb;
  }
  write(p: Uint8Array[]) {
    this.received += p.length;
  }
  async close() {}
}

/** One-way Device -> Device goodput (Mbit/s of inner IP packets) over an in-memory pipe. */
async function deviceMbps(aead: AeadBackend, size: number): Promise<number> {
  const [bindA, bindB] = pipe();
  const ka = generateKeyPair();
  const kb = generateKeyPair();
  const tunA = new SinkTun();
  const tunB = new SinkTun();
  const a = new Device({ privateKey: ka.privateKey, tun: tunA, bind: bindA, aead });
  const b = new Device({ privateKey: kb.privateKey, tun: tunB, bind: bindB, aead });
  a.setPeer({ publicKey: kb.publicKey, allowedIps: ['10.0.0.2/32'], endpoint: 'b' });
  b.setPeer({ publicKey: ka.publicKey, allowedIps: ['10.0.0.1/32'] });
  await a.up();
  await b.up();
  const pkt = new Uint8Array(size);
  pkt.set([0x45, 0, size >>> 8, size & 0xff, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  tunA.onPackets!([pkt]);
  while (tunB.received < 1) await new Promise((r) => setImmediate(r));
  const batch = Array.from({ length: 64 }, () => pkt);
  const t0 = performance.now();
  let sent = 0;
  while (performance.now() - t0 < 1000) {
    // Keep a bounded number of batches in flight so the receiver is measured too.
    if (sent - tunB.received < 512) {
      tunA.onPackets!(batch);
      sent += batch.length;
    } else await new Promise((r) => setImmediate(r));
  }
  while (tunB.received < sent) await new Promise((r) => setImmediate(r));
  const secs = (performance.now() - t0) / 1000;
  await Promise.all([a.close(), b.close()]);
  return (tunB.received * size * 8) / 1e6 / secs;
}

const rows: string[][] = [];
const sodium = sodiumAead();
const backends = [nodeAead(), nobleAead(), ...(sodium ? [sodium] : [])];
for (const size of [64, 1420]) {
  for (const op of ['seal', 'open'] as const) {
    const base = median(Array.from({ length: RUNS }, () => sealOpenMBps(backends[0], size, op)));
    for (const b of backends) {
      const v = b === backends[0] ? base : median(Array.from({ length: RUNS }, () => sealOpenMBps(b, size, op)));
      rows.push([`${op} ${size} B`, b.name, `${v.toFixed(1)} MB/s`, (v / base).toFixed(2)]);
    }
  }
}
// Runs alternate between backends so load from other processes on the box hits both alike.
const deviceRuns = new Map<AeadBackend, number[]>(backends.map((b) => [b, []]));
for (let i = 0; i < RUNS; i++) for (const b of backends) deviceRuns.get(b)!.push(await deviceMbps(b, 1420));
for (const b of backends) rows.push(['Device->Device 1420 B', b.name, `${median(deviceRuns.get(b)!).toFixed(0)} Mbit/s`, '']);
const base = rows.find((r) => r[0].startsWith('Device') && r[1] === 'node');
for (const r of rows) if (r[0].startsWith('Device')) r[3] = (parseFloat(r[2]) / parseFloat(base![2])).toFixed(2);

const header = ['operation', 'backend', 'median', 'ratio vs node'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));
