/**
 * Test helpers for the coordination server: admin calls, and a raw netmap stream that
 * records every frame as sent (full, delta, keepalive) so tests can assert on the protocol
 * itself (seqs, resumption) rather than on a client's folded netmap.
 */
import http from 'node:http';
import { boxKey, open, sealRequest } from '../../src-main/control/sealed.js';
import type { ControlServer } from '../../src-main/control/server.js';
import { encodeKey, generateKeyPair, type KeyPair } from '../../src-main/protocol/keys.js';
import type { MapMessage, NodeInfo } from '../../src-main/protocol/netmap.js';

export async function admin(server: ControlServer, method: string, path: string, body?: unknown, key = server.adminKey): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${key}` }, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

export async function authKey(server: ControlServer, body: Record<string, unknown>): Promise<string> {
  const r = await admin(server, 'POST', '/api/preauthkeys', body);
  if (r.status !== 200) throw new Error(`preauthkey: ${JSON.stringify(r.json)}`);
  return r.json.key as string;
}

/** A node speaking the sealed protocol directly. */
export class RawNode {
  readonly machine: KeyPair = generateKeyPair();
  nodeKey = encodeKey('nodekey', generateKeyPair().publicKey);
  readonly discoKey = encodeKey('discokey', generateKeyPair().publicKey);
  private readonly shared: Uint8Array;
  id = '';

  /** `server` may be replaced by the same server restarted on another port (its key persists). */
  constructor(public server: ControlServer) {
    this.shared = boxKey(server.publicKey, this.machine.privateKey);
  }

  async call<T>(path: string, body: object): Promise<{ status: number; value: T & { error?: string } }> {
    const { request } = sealRequest(this.server.publicKey, this.machine, body, this.shared);
    const res = await fetch(`${this.server.url}${path}`, { method: 'POST', body: JSON.stringify(request) });
    const j = (await res.json()) as { error?: string };
    return { status: res.status, value: (res.status === 200 ? open<T>(this.shared, j) : j) as T & { error?: string } };
  }

  async register(hostname: string, key?: string): Promise<NodeInfo> {
    const r = await this.call<{ node: NodeInfo }>('/machine/register', { nodeKey: this.nodeKey, discoKey: this.discoKey, hostname, ...(key ? { authKey: key } : {}) });
    if (r.status !== 200) throw new Error(`register ${hostname}: ${r.status} ${r.value.error}`);
    this.id = r.value.node.id;
    return r.value.node;
  }

  async update(endpoints: string[]): Promise<void> {
    const r = await this.call('/machine/update', { nodeKey: this.nodeKey, endpoints });
    if (r.status !== 200) throw new Error(`update: ${r.status} ${r.value.error}`);
  }

  /** Opens a map stream; resolves once the HTTP status is known. */
  stream(extra: object = {}): Promise<RawStream> {
    const { request } = sealRequest(this.server.publicKey, this.machine, { nodeKey: this.nodeKey, ...extra }, this.shared);
    return new Promise((resolve, reject) => {
      const req = http.request(`${this.server.url}/machine/map`, { method: 'POST' }, (res) => resolve(new RawStream(req, res, this.shared)));
      req.on('error', reject);
      req.end(JSON.stringify(request));
    });
  }
}

export class RawStream {
  readonly frames: MapMessage[] = [];
  ended = false;
  body = '';
  private waiters: { pred: (m: MapMessage) => boolean; resolve: (m: MapMessage) => void }[] = [];

  constructor(
    private readonly req: http.ClientRequest,
    readonly res: http.IncomingMessage,
    shared: Uint8Array,
  ) {
    let buf = '';
    res.on('data', (c: Buffer) => {
      if (res.statusCode !== 200) {
        this.body += c.toString();
        return;
      }
      buf += c.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const m = open<MapMessage>(shared, JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        this.frames.push(m);
        for (const w of [...this.waiters]) {
          if (!w.pred(m)) continue;
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(m);
        }
      }
    });
    res.on('end', () => (this.ended = true));
    res.on('error', () => {});
  }

  get status(): number {
    return this.res.statusCode ?? 0;
  }

  /** The latest seq this stream carried (a full map's or a delta's). */
  get seq(): number {
    for (let i = this.frames.length - 1; i >= 0; i--) {
      const f = this.frames[i];
      if (f.kind === 'full') return f.netmap.seq;
      if (f.kind === 'delta') return f.delta.seq;
    }
    return 0;
  }

  get session(): string | undefined {
    const f = this.frames.find((x) => x.kind === 'full');
    return f?.kind === 'full' ? f.session : undefined;
  }

  next(pred: (m: MapMessage) => boolean, ms = 5000): Promise<MapMessage> {
    const have = this.frames.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`stream: no matching frame in ${ms} ms; got ${JSON.stringify(this.frames).slice(-600)}`)), ms);
      this.waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
    });
  }

  close(): void {
    this.req.destroy();
  }
}

export const delta = (m: MapMessage) => (m.kind === 'delta' ? m.delta : undefined);

export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
