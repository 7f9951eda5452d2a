/**
 * Simulated nodes for bench/control, run in a worker thread so they do not share the
 * server's event loop. Each node has real X25519 machine/node/disco keys, registers with
 * a sealed request and holds a real sealed netmap stream over loopback. To stay cheap per
 * node it does not keep a netmap: it opens every frame (authenticating it), counts the bytes
 * of netmap frames (keepalives aside), remembers its peer count from the full map and reports
 * when a peer's endpoint it was asked to watch arrives.
 *
 * Messages from the parent: {cmd: 'register' | 'stream' | 'bytes' | 'close'} and
 * {cmd: 'update', idx, endpoint}. Replies carry the same cmd; sightings are {cmd: 'seen', endpoint, at[]}; {cmd: 'ready'} comes once, after the keys are made.
 */
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { boxKey, open, sealRequest } from '../../src-main/control/sealed.js';
import { encodeKey, type KeyPair } from '../../src-main/protocol/keys.js';
import type { MapMessage } from '../../src-main/protocol/netmap.js';

export interface WorkerInit {
  url: string;
  serverKeyHex: string;
  nodes: { idx: number; hostname: string; authKey: string }[];
  concurrency: number;
  /** Endpoints starting with this are change markers the parent waits for. */
  markerPrefix: string;
}

interface SimNode {
  idx: number;
  hostname: string;
  authKey: string;
  machine: KeyPair;
  shared: Uint8Array;
  nodeKey: string;
  discoKey: string;
  peers: number;
  stream?: http.ClientRequest;
}

const init = workerData as WorkerInit;
const port = parentPort!;
const now = () => performance.timeOrigin + performance.now();
const serverKey = new Uint8Array(Buffer.from(init.serverKeyHex, 'hex'));
const agent = new http.Agent({ keepAlive: true, maxSockets: init.concurrency });
const streamAgent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
let bytes = 0;
let seen: { endpoint: string; at: number }[] = [];
let flushScheduled = false;

function rawKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const d = privateKey.export({ format: 'jwk' }).d!;
  const x = publicKey.export({ format: 'jwk' }).x!;
  return { privateKey: new Uint8Array(Buffer.from(d, 'base64url')), publicKey: new Uint8Array(Buffer.from(x, 'base64url')) };
}

const nodes: SimNode[] = init.nodes.map((n) => {
  const machine = rawKeyPair();
  return { ...n, machine, shared: boxKey(serverKey, machine.privateKey), nodeKey: encodeKey('nodekey', rawKeyPair().publicKey), discoKey: encodeKey('discokey', rawKeyPair().publicKey), peers: 0 };
});
const byIdx = new Map(nodes.map((n) => [n.idx, n]));
port.postMessage({ cmd: 'ready' });

function post(path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${init.url}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function sealedCall(n: SimNode, path: string, body: object): Promise<unknown> {
  const { request } = sealRequest(serverKey, n.machine, body, n.shared);
  const r = await post(path, JSON.stringify(request));
  if (r.status !== 200) throw new Error(`${path} for node ${n.idx}: HTTP ${r.status} ${r.body}`);
  return open(n.shared, JSON.parse(r.body));
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

function sighted(endpoint: string): void {
  seen.push({ endpoint, at: now() });
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(() => {
    flushScheduled = false;
    const batch = seen;
    seen = [];
    const byEndpoint = new Map<string, number[]>();
    for (const s of batch) (byEndpoint.get(s.endpoint) ?? byEndpoint.set(s.endpoint, []).get(s.endpoint)!).push(s.at);
    for (const [endpoint, at] of byEndpoint) port.postMessage({ cmd: 'seen', endpoint, at });
  });
}

function onFrame(n: SimNode, m: MapMessage, gotFull: () => void): void {
  if (m.kind === 'full') {
    n.peers = m.netmap.peers.length;
    gotFull();
    return;
  }
  if (m.kind !== 'delta') return;
  for (const p of m.delta.peersChanged ?? []) for (const e of p.endpoints) if (e.startsWith(init.markerPrefix)) sighted(e);
}

function openStream(n: SimNode): Promise<void> {
  return new Promise((resolve, reject) => {
    const { request } = sealRequest(serverKey, n.machine, { nodeKey: n.nodeKey, endpoints: [`10.${(n.idx >> 16) & 255}.${(n.idx >> 8) & 255}.${n.idx & 255}:41641`] }, n.shared);
    const req = http.request(`${init.url}/machine/map`, { method: 'POST', agent: streamAgent, headers: { 'content-type': 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`map for node ${n.idx}: HTTP ${res.statusCode}`));
        res.resume();
        return;
      }
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          const m = open<MapMessage>(n.shared, JSON.parse(line));
          if (m.kind !== 'keepalive') bytes += line.length + 1;
          onFrame(n, m, resolve);
        }
      });
      res.on('error', () => {});
    });
    req.on('error', reject);
    n.stream = req;
    req.end(JSON.stringify(request));
  });
}

port.on('message', (msg: { cmd: string; idx?: number; endpoint?: string }) => {
  void (async () => {
    try {
      if (msg.cmd === 'register') {
        const latencies: number[] = [];
        const t0 = now();
        await pool(nodes, init.concurrency, async (n) => {
          const t = now();
          await sealedCall(n, '/machine/register', { nodeKey: n.nodeKey, discoKey: n.discoKey, hostname: n.hostname, authKey: n.authKey });
          latencies.push(now() - t);
        });
        port.postMessage({ cmd: 'register', latencies, elapsedMs: now() - t0 });
      } else if (msg.cmd === 'stream') {
        const t0 = now();
        await pool(nodes, init.concurrency, openStream);
        port.postMessage({ cmd: 'stream', elapsedMs: now() - t0, peers: nodes.map((n) => [n.idx, n.peers]) });
      } else if (msg.cmd === 'update') {
        const n = byIdx.get(msg.idx!)!;
        const t0 = now();
        await sealedCall(n, '/machine/update', { nodeKey: n.nodeKey, endpoints: [msg.endpoint!] });
        port.postMessage({ cmd: 'update', t0 });
      } else if (msg.cmd === 'bytes') {
        port.postMessage({ cmd: 'bytes', bytes });
      } else if (msg.cmd === 'close') {
        for (const n of nodes) n.stream?.destroy();
        agent.destroy();
        streamAgent.destroy();
        port.postMessage({ cmd: 'close' });
        port.close();
      }
    } catch (err) {
      port.postMessage({ cmd: 'error', message: (err as Error).message });
    }
  })();
});
