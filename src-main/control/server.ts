/**
 * The coordination server: identities, pre-auth keys, addresses, the policy, and one
 * long-lived netmap stream per node (full map first, then deltas). Embeds a DERP relay
 * (/derp on the same HTTP server) and a STUN server by default. Never on the data path.
 *
 * Cost of a change: an endpoint or online change of node X is sent only to X's peers
 * (PolicyIndex.peersOf); a join, removal or tag change re-diffs the peers of the nodes
 * it touches; only a policy change revisits every stream.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { DerpServer } from '../derp/server.js';
import { StunServer } from '../derp/stun-server.js';
import { checkPolicy, type Policy, PolicyIndex, tagAllowed } from '../policy/index.js';
import type { DerpMap } from '../protocol/derpmap.js';
import { encodeKey, generateKeyPair, type KeyPair, parseKey, publicKeyOf } from '../protocol/keys.js';
import type { NodeInfo } from '../protocol/netmap.js';
import { checkOidcOptions, LoginError, type LoginRequest, OidcLogins, type OidcOptions } from './oidc.js';
import { MapStreams, type MapStreamsOptions, type Resume } from './mapstreams.js';
import { NodeTable } from './nodetable.js';
import { RequestOpener, seal } from './sealed.js';
import { type NodeRecord, type PreAuthKeyRecord, SqliteStore, type Store } from './store.js';

export const DEFAULT_KEY_EXPIRY_MS = 180 * 24 * 3600_000;
const MAX_BODY = 1 << 20;
const EPHEMERAL_GRACE_MS = 30_000;
/** How often changed endpoints/home relays are written to the store. */
const SOFT_STATE_FLUSH_MS = 2_000;
/** Longest a `/machine/wait` long-poll is held before it answers with the status so far. */
const WAIT_POLL_MS = 25_000;
/** The tailnet's IPv6 ULA /48 (RFC 4193), one /128 per node. */
export const ULA_PREFIX = 'fd7a:7069:6572';
/** Written on first start so a fresh server lets its own nodes talk; change it with `pierce policy set`. */
export const INITIAL_POLICY = `// Initial policy written by the coordination server: every node may reach every node.
// Pierce denies by default: remove this rule and nothing is allowed.
{
  "acls": [
    {"action": "accept", "src": ["*"], "dst": ["*:*"]},
  ],
}
`;

export interface ControlServerOptions {
  dataDir: string;
  /** "host:port"; port 0 picks a free one. */
  listen: string;
  /** Host name or IP that nodes use to reach the embedded relay (default: the listen host). */
  publicHost?: string;
  /**
   * A second address of this host, listed as a second relay node of the region: nodes
   * then STUN two addresses, which is how netcheck sees a NAT that maps per destination.
   */
  publicHostAlt?: string;
  /** Embedded DERP relay + STUN server (default on). */
  derp?: boolean;
  /** UDP port of the embedded STUN server (default 3478; 0 = any free port). */
  stunPort?: number;
  log?: (msg: string) => void;
  /** How long an ephemeral node may stay offline before it is removed (default 30 s). */
  ephemeralGraceMs?: number;
  /** Keepalive, resumption history and resume window of netmap streams. */
  mapStreams?: MapStreamsOptions;
  /** SSO: a node without an auth key logs in through this OpenID Connect provider (docs/control-protocol.md). */
  oidc?: OidcOptions;
  /** A node that joined through SSO stays unauthorized until `POST /api/nodes/:id/approve`. */
  requireApproval?: boolean;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const hashKey = (k: string) => createHash('sha256').update(k).digest('hex');

export function addressesFor(index: number): { ipv4: string; ipv6: string } {
  if (index < 1 || index >= 1 << 22) throw new Error('address space of 100.64.0.0/10 exhausted');
  const v = (100 << 24) + (64 << 16) + index;
  const ipv4 = [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
  // RFC 5952 §4.2: no zero group before the "::"-compressed run.
  const hi = index >>> 16;
  return { ipv4, ipv6: `${ULA_PREFIX}::${hi ? `${hi.toString(16)}:` : ''}${(index & 0xffff).toString(16)}` };
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJson(buf: Buffer): unknown {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

/** `resume` of a map request: where the client left off, or undefined for a full map. */
function parseResume(v: unknown): Resume | undefined {
  if (v === undefined) return undefined;
  const r = v as Partial<Resume>;
  if (!r || typeof r !== 'object' || typeof r.session !== 'string' || r.session.length > 64 || typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 0) throw new HttpError(400, 'resume must be {"session": string, "seq": non-negative integer}');
  return { session: r.session, seq: r.seq };
}

export class ControlServer {
  private readonly store: Store;
  private readonly http: http.Server;
  private readonly serverKey: KeyPair;
  private readonly opener: RequestOpener;
  private readonly nodes = new NodeTable();
  private readonly maps: MapStreams;
  private readonly ephemeralTimers = new Map<string, NodeJS.Timeout>();
  private readonly unsaved = new Set<string>();
  private flushTimer?: NodeJS.Timeout;
  /** Pre-auth keys by the hash of their secret (this server is the store's only writer). */
  private readonly authKeys = new Map<string, PreAuthKeyRecord>();
  private policy!: Policy;
  private index!: PolicyIndex;
  private derp?: DerpServer;
  private stun?: StunServer;
  private stunAlt?: StunServer;
  private derpMap: DerpMap = { regions: {} };
  private oidc?: OidcLogins;
  private readonly log: (m: string) => void;
  url = '';
  adminKey = '';

  private constructor(
    private readonly o: ControlServerOptions,
    store: Store,
  ) {
    this.store = store;
    this.log = o.log ?? ((m) => process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), msg: m })}\n`));
    const saved = store.getMeta('server_private_key');
    const priv = saved ? new Uint8Array(Buffer.from(saved, 'base64')) : generateKeyPair().privateKey;
    if (!saved) store.setMeta('server_private_key', Buffer.from(priv).toString('base64'));
    this.serverKey = { privateKey: priv, publicKey: publicKeyOf(priv) };
    this.opener = new RequestOpener(priv);
    for (const n of store.nodes()) this.nodes.set(n.id, n);
    for (const k of store.preAuthKeys()) this.authKeys.set(k.hash, k);
    this.maps = new MapStreams({ index: () => this.index, info: (id) => this.infoById(id), derpMap: () => this.derpMap, onOffline: (id) => this.nodeOffline(id) }, o.mapStreams);
    this.http = http.createServer((req, res) => void this.route(req, res));
    this.http.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.derp?.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    });
  }

  static async start(o: ControlServerOptions): Promise<ControlServer> {
    if (o.oidc) checkOidcOptions(o.oidc);
    const s = new ControlServer(o, new SqliteStore(o.dataDir));
    s.initAdminKey();
    s.loadPolicy();
    for (const n of s.nodes.values()) if (n.ephemeral) s.scheduleEphemeralRemoval(n);
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(o.listen);
    if (!m) throw new Error(`--listen must be HOST:PORT or [V6]:PORT, got "${o.listen}"`);
    const host = m[1] ?? (m[2] || '0.0.0.0');
    await new Promise<void>((resolve, reject) => {
      s.http.once('error', reject);
      s.http.listen(Number(m[3]), host, () => resolve());
    });
    const port = (s.http.address() as { port: number }).port;
    const shown = o.publicHost ?? (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
    s.url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
    if (o.oidc) s.oidc = new OidcLogins(o.oidc, { baseUrl: s.url, complete: (r, user) => s.completeLogin(r, user), nodeStatus: (mk) => s.loginStatus(mk), log: s.log });
    if (o.derp !== false) {
      s.derp = new DerpServer({ admit: async (key) => s.admitRelayClient(key), log: s.log });
      // With a second address each gets its own socket: a reply must leave from the address
      // the request went to, or an endpoint-dependent NAT drops it (dgram cannot see the
      // destination address of a request to a wildcard socket).
      const stunHost = o.publicHostAlt && /^[\d.]+$/.test(shown) ? shown : host === '0.0.0.0' ? undefined : host;
      s.stun = await StunServer.listen({ port: o.stunPort ?? 3478, host: stunHost });
      if (o.publicHostAlt) s.stunAlt = await StunServer.listen({ port: s.stun.port, host: o.publicHostAlt });
      s.derpMap = {
        regions: {
          1: {
            regionId: 1,
            regionCode: 'embedded',
            regionName: 'Embedded relay',
            nodes: [shown, ...(o.publicHostAlt ? [o.publicHostAlt] : [])].map((h, i) => ({
              name: `1${'ab'[i]}`,
              regionId: 1,
              hostName: h,
              ...(h.includes(':') ? { ipv6: h } : /^[\d.]+$/.test(h) ? { ipv4: h } : {}),
              derpPort: port,
              insecureHttp: true,
              stunPort: s.stun!.port,
            })),
          },
        },
      };
    }
    s.log(`control server listening on ${s.url} (data ${o.dataDir}, ${s.nodes.size} nodes${s.derp ? `, relay /derp, STUN udp/${s.stun!.port}` : ''})`);
    return s;
  }

  /** Counters for health checks and benchmarks. */
  stats(): { nodes: number; online: number; streamBytesSent: number; streamFramesSent: number } {
    return { nodes: this.nodes.size, online: this.maps.onlineCount, streamBytesSent: this.maps.bytesSent, streamFramesSent: this.maps.framesSent };
  }

  get publicKey(): Uint8Array {
    return this.serverKey.publicKey;
  }

  private initAdminKey(): void {
    if (this.store.getMeta('admin_key_hash')) return;
    this.adminKey = `pierce-admin-${randomBytes(24).toString('hex')}`;
    this.store.setMeta('admin_key_hash', hashKey(this.adminKey));
    const file = join(this.o.dataDir, 'admin.key');
    writeFileSync(file, `${this.adminKey}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }

  private loadPolicy(): void {
    let text = this.store.policy();
    if (text === undefined) {
      text = INITIAL_POLICY;
      this.store.setPolicy(text);
      this.store.audit('server', 'policy.initial', { text });
    }
    const res = checkPolicy(text, { filename: 'stored policy' });
    if (!res.policy) throw new Error(`stored policy is invalid: ${res.errors.map((e) => e.message).join('; ')}`);
    this.policy = res.policy;
    this.rebuildIndex();
  }

  private rebuildIndex(): void {
    this.index = new PolicyIndex(this.policy, { nodes: [...this.nodes.values()].filter((n) => !n.pendingApproval).map((n) => ({ id: n.id, user: n.user, tags: n.tags, addresses: [n.ipv4, n.ipv6] })) });
  }

  private expired(n: NodeRecord, now = Date.now()): boolean {
    return n.keyExpiry !== null && n.keyExpiry <= now;
  }

  private async admitRelayClient(nodeKey: Uint8Array): Promise<boolean> {
    const k = encodeKey('nodekey', nodeKey);
    for (const n of this.nodes.values()) if (n.nodeKey === k) return !this.expired(n) && !n.pendingApproval;
    return false;
  }

  private infoById(id: string): NodeInfo | undefined {
    const n = this.nodes.get(id);
    return n && this.info(n);
  }

  /** What the admin API shows: the node as peers see it, plus bookkeeping. */
  private adminView(n: NodeRecord): NodeInfo & { created: string; lastSeen: string; ephemeral: boolean } {
    return { ...this.info(n), created: new Date(n.created).toISOString(), lastSeen: new Date(n.lastSeen).toISOString(), ephemeral: n.ephemeral };
  }

  info(n: NodeRecord): NodeInfo {
    return {
      id: n.id,
      name: n.name,
      user: n.tags.length ? undefined : n.user,
      tags: n.tags,
      nodeKey: n.nodeKey,
      discoKey: n.discoKey,
      addresses: [n.ipv4, n.ipv6],
      endpoints: n.endpoints,
      homeRegion: n.homeRegion,
      online: this.maps.online(n.id),
      os: n.os,
      keyExpiry: n.keyExpiry === null ? undefined : new Date(n.keyExpiry).toISOString(),
    };
  }

  // ---- HTTP ----

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = async (status: number, value: unknown) => {
      // Answer only once the request's writes are on disk (they share a group commit).
      await this.store.durable().catch((err: Error) => {
        status = 500;
        value = { error: `storage failure, the change may not be saved: ${err.message}` };
      });
      const body = JSON.stringify(value);
      // After 413 the rest of the body is still in flight: the connection cannot be reused.
      const close = status === 413 ? { connection: 'close' } : {};
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...close });
      res.end(body);
    };
    try {
      if (this.derp?.handleRequest(req, res)) return;
      if (this.oidc && (await this.oidc.handle(req, res, url))) return;
      const key = `${req.method} ${url.pathname}`;
      if (key === 'GET /healthz') return send(200, { ok: true, nodes: this.nodes.size, online: this.maps.onlineCount });
      if (key === 'GET /key') return send(200, { publicKey: Buffer.from(this.serverKey.publicKey).toString('hex') });
      if (key === 'POST /machine/register') return send(200, await this.register(req));
      if (key === 'POST /machine/update') return send(200, await this.update(req));
      if (key === 'POST /machine/wait') return send(200, await this.waitLogin(req));
      if (key === 'POST /machine/map') return await this.map(req, res);
      if (url.pathname.startsWith('/api/')) return send(200, await this.admin(req, url));
      throw new HttpError(404, `no such endpoint: ${key}`);
    } catch (err) {
      const status = err instanceof HttpError || err instanceof LoginError ? err.status : 400;
      if (!res.headersSent) await send(status, { error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    }
  }

  private async openSealed<T>(req: http.IncomingMessage): Promise<{ machineKey: string; shared: Uint8Array; body: T }> {
    try {
      return this.opener.open<T>(parseJson(await readBody(req)));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(401, (err as Error).message);
    }
  }

  private byMachine(machineKey: string): NodeRecord | undefined {
    return this.nodes.byMachine(machineKey);
  }

  private async register(req: http.IncomingMessage): Promise<unknown> {
    const { machineKey, shared, body } = await this.openSealed<{ nodeKey?: string; discoKey?: string; hostname?: string; os?: string; authKey?: string; tags?: string[]; oldNodeKey?: string }>(req);
    const nodeKey = body.nodeKey ?? '';
    parseKey('nodekey', nodeKey);
    parseKey('discokey', body.discoKey ?? '');
    const hostname = (body.hostname ?? 'node').replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63) || 'node';
    const tags = body.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || !t.startsWith('tag:'))) throw new HttpError(400, 'tags must be a list like ["tag:server"]');
    const now = Date.now();
    let node = this.byMachine(machineKey);
    if (body.authKey) {
      const pak = this.usePreAuthKey(body.authKey, now);
      for (const t of tags) if (!tagAllowed(this.policy, t, { user: pak.user, tags: [] })) throw new HttpError(403, `${pak.user} may not apply ${t} (see tagOwners)`);
      const allTags = [...new Set([...pak.tags, ...tags])];
      if (!node) {
        const { ipv4, ipv6 } = addressesFor(this.store.nextAddressIndex());
        node = { id: `n${ipv4.split('.').slice(1).join('-')}`, machineKey, nodeKey, discoKey: body.discoKey!, name: this.uniqueName(hostname), user: pak.user, tags: allTags, ipv4, ipv6, endpoints: [], os: body.os, created: now, keyExpiry: now + DEFAULT_KEY_EXPIRY_MS, lastSeen: now, ephemeral: pak.ephemeral };
        this.store.putNode(node);
        this.nodes.set(node.id, node);
        this.store.audit(`preauthkey:${pak.id}`, 'node.register', { id: node.id, name: node.name, user: node.user, tags: node.tags });
        this.topologyChanged([node.id]);
        if (node.ephemeral) this.scheduleEphemeralRemoval(node);
      } else {
        Object.assign(node, { nodeKey, discoKey: body.discoKey!, user: pak.user, tags: allTags, keyExpiry: node.keyExpiry === null ? null : now + DEFAULT_KEY_EXPIRY_MS, os: body.os ?? node.os });
        this.store.putNode(node);
        this.store.audit(`preauthkey:${pak.id}`, 'node.reauth', { id: node.id });
        this.topologyChanged([node.id]);
      }
    } else {
      if (this.oidc && (!node || this.expired(node, now))) return seal(shared, { authUrl: this.oidc.start({ machineKey, nodeKey, discoKey: body.discoKey!, hostname, os: body.os, tags }) });
      if (!node) throw new HttpError(401, 'unknown machine: register with an auth key (interactive login is not configured on this server)');
      if (node.nodeKey !== nodeKey) {
        if (body.oldNodeKey !== node.nodeKey) throw new HttpError(401, 'node key does not match; to rotate, send oldNodeKey');
        if (this.expired(node, now)) throw new HttpError(401, 'node key expired: log in again with an auth key');
        node.nodeKey = nodeKey;
        if (node.keyExpiry !== null) node.keyExpiry = now + DEFAULT_KEY_EXPIRY_MS;
        this.store.audit(`node:${node.id}`, 'node.rotate', { id: node.id });
      } else if (this.expired(node, now)) throw new HttpError(401, 'node key expired: log in again with an auth key');
      node.discoKey = body.discoKey!;
      this.store.putNode(node);
      this.topologyChanged([node.id]);
    }
    return seal(shared, { node: this.info(node), ...(node.pendingApproval ? { pendingApproval: true } : {}) });
  }

  private uniqueName(base: string): string {
    return this.nodes.uniqueName(base);
  }

  private usePreAuthKey(secret: string, now: number): PreAuthKeyRecord {
    const hash = hashKey(secret);
    const k = this.authKeys.get(hash);
    if (!k) throw new HttpError(401, 'invalid auth key');
    if (k.expires <= now) throw new HttpError(401, 'auth key expired');
    if (k.used && !k.reusable) throw new HttpError(401, 'auth key already used (it is single-use)');
    if (!k.reusable) {
      k.used = true;
      this.store.putPreAuthKey(k);
    }
    return k;
  }

  private nodeForRequest(machineKey: string, nodeKey: unknown): NodeRecord {
    const node = this.byMachine(machineKey);
    if (!node || node.nodeKey !== nodeKey) throw new HttpError(401, 'unknown node: register first');
    if (this.expired(node)) throw new HttpError(401, 'node key expired: log in again');
    if (node.pendingApproval) throw new HttpError(403, `node ${node.id} awaits approval by an admin (POST /api/nodes/${node.id}/approve)`);
    return node;
  }

  private async update(req: http.IncomingMessage): Promise<unknown> {
    const { machineKey, shared, body } = await this.openSealed<{ nodeKey?: string; endpoints?: string[]; homeRegion?: number }>(req);
    const node = this.nodeForRequest(machineKey, body.nodeKey);
    if (this.applyUpdate(node, body)) this.maps.nodeChanged(node.id);
    return seal(shared, { ok: true });
  }

  /** Validates and stores an endpoint/relay update; true when something changed (the caller tells the peers). */
  private applyUpdate(node: NodeRecord, body: { endpoints?: unknown; homeRegion?: unknown }): boolean {
    let changed = false;
    if (body.endpoints !== undefined) {
      if (!Array.isArray(body.endpoints) || body.endpoints.length > 64 || body.endpoints.some((e) => typeof e !== 'string' || e.length > 64)) throw new HttpError(400, 'endpoints must be a list of at most 64 "ip:port" strings');
      if (JSON.stringify(body.endpoints) !== JSON.stringify(node.endpoints)) {
        node.endpoints = body.endpoints as string[];
        changed = true;
      }
    }
    if (body.homeRegion !== undefined && body.homeRegion !== node.homeRegion) {
      if (typeof body.homeRegion !== 'number') throw new HttpError(400, 'homeRegion must be a number');
      node.homeRegion = body.homeRegion;
      changed = true;
    }
    if (changed) {
      node.lastSeen = Date.now();
      this.saveSoon(node);
    }
    return changed;
  }

  /**
   * Endpoints and home relay are soft state (a node sends them again on every reconnect), so
   * they are persisted in batches instead of costing each update an fsync.
   */
  private saveSoon(node: NodeRecord): void {
    this.unsaved.add(node.id);
    this.flushTimer ??= setTimeout(() => this.saveSoftState(), SOFT_STATE_FLUSH_MS);
  }

  private saveSoftState(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const id of this.unsaved) {
      const n = this.nodes.get(id);
      if (n) this.store.putNode(n);
    }
    this.unsaved.clear();
  }

  private async map(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const { machineKey, shared, body } = await this.openSealed<{ nodeKey?: string; endpoints?: string[]; homeRegion?: number; resume?: unknown }>(req);
    const node = this.nodeForRequest(machineKey, body.nodeKey);
    const resume = parseResume(body.resume);
    this.applyUpdate(node, body);
    clearTimeout(this.ephemeralTimers.get(node.id));
    this.ephemeralTimers.delete(node.id);
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    this.maps.attach(node.id, res, shared, resume);
    this.maps.nodeChanged(node.id);
  }

  /** The node's last stream ended: peers learn it is offline; an ephemeral node is removed after the grace period. */
  private nodeOffline(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    node.lastSeen = Date.now();
    this.maps.nodeChanged(id);
    if (node.ephemeral) this.scheduleEphemeralRemoval(node);
  }

  private scheduleEphemeralRemoval(node: NodeRecord): void {
    clearTimeout(this.ephemeralTimers.get(node.id));
    const timer = setTimeout(() => {
      this.ephemeralTimers.delete(node.id);
      if (this.nodes.get(node.id) === node && !this.maps.online(node.id)) this.removeNode(node.id, 'server', 'node.ephemeral-gone');
    }, this.o.ephemeralGraceMs ?? EPHEMERAL_GRACE_MS);
    this.ephemeralTimers.set(node.id, timer);
  }

  /** Endpoint, relay, online or key change of one node: O(its peers). */
  private nodeChanged(node: NodeRecord): void {
    this.maps.nodeChanged(node.id);
  }

  /**
   * Nodes joined, left or changed identity (tags, approval): the policy index is updated for
   * just them and only the sessions it names as affected are re-diffed. `all` (after a policy
   * change and rebuildIndex) re-diffs every session.
   */
  private topologyChanged(ids: string[], all = false): void {
    if (all) return this.maps.policyChanged();
    const affected = new Set<string>();
    for (const id of ids) {
      const n = this.nodes.get(id);
      const touched = n && !n.pendingApproval ? this.index.upsertNode({ id: n.id, user: n.user, tags: n.tags, addresses: [n.ipv4, n.ipv6] }) : this.index.removeNode(id);
      for (const a of touched) affected.add(a);
    }
    this.maps.topologyChanged(ids, affected);
  }

  private removeNode(id: string, actor: string, action: string): void {
    const node = this.nodes.get(id);
    if (!node) throw new HttpError(404, `no node ${id}`);
    this.maps.remove(id);
    clearTimeout(this.ephemeralTimers.get(id));
    this.ephemeralTimers.delete(id);
    this.nodes.delete(id);
    this.store.deleteNode(id);
    this.store.audit(actor, action, { id, name: node.name });
    this.topologyChanged([id]);
  }

  // ---- interactive login (SSO; the flow itself is in oidc.ts) ----

  private async waitLogin(req: http.IncomingMessage): Promise<unknown> {
    const { machineKey, shared } = await this.openSealed<object>(req);
    if (!this.oidc) throw new HttpError(404, 'interactive login is not configured on this server');
    return seal(shared, await this.oidc.wait(machineKey, WAIT_POLL_MS));
  }

  private loginStatus(machineKey: string): { node: NodeInfo; pendingApproval: boolean } | undefined {
    const node = this.byMachine(machineKey);
    return node && !this.expired(node) ? { node: this.info(node), pendingApproval: !!node.pendingApproval } : undefined;
  }

  /** A login for `user` succeeded: register the machine, or re-authenticate it keeping its identity and addresses. */
  private completeLogin(r: LoginRequest, user: string): { pendingApproval: boolean } {
    for (const t of r.tags) if (!tagAllowed(this.policy, t, { user, tags: [] })) throw new Error(`${user} may not apply ${t} (see tagOwners)`);
    const now = Date.now();
    let node = this.byMachine(r.machineKey);
    if (!node) {
      const { ipv4, ipv6 } = addressesFor(this.store.nextAddressIndex());
      node = { id: `n${ipv4.split('.').slice(1).join('-')}`, machineKey: r.machineKey, nodeKey: r.nodeKey, discoKey: r.discoKey, name: this.uniqueName(r.hostname), user, tags: r.tags, ipv4, ipv6, endpoints: [], os: r.os, created: now, keyExpiry: now + DEFAULT_KEY_EXPIRY_MS, lastSeen: now, ephemeral: false, ...(this.o.requireApproval ? { pendingApproval: true } : {}) };
      this.nodes.set(node.id, node);
      this.store.audit(`oidc:${user}`, 'node.register', { id: node.id, name: node.name, user, tags: node.tags, pendingApproval: !!node.pendingApproval });
    } else {
      Object.assign(node, { nodeKey: r.nodeKey, discoKey: r.discoKey, user, tags: r.tags, keyExpiry: node.keyExpiry === null ? null : now + DEFAULT_KEY_EXPIRY_MS, os: r.os ?? node.os });
      this.store.audit(`oidc:${user}`, 'node.reauth', { id: node.id });
    }
    this.store.putNode(node);
    this.topologyChanged([node.id]);
    return { pendingApproval: !!node.pendingApproval };
  }

  private approveNode(id: string): unknown {
    const node = this.nodes.get(id);
    if (!node) throw new HttpError(404, `no node ${id}`);
    if (!node.pendingApproval) return { ok: true, alreadyApproved: true };
    delete node.pendingApproval;
    this.store.putNode(node);
    this.store.audit('admin', 'node.approve', { id, name: node.name, user: node.user });
    this.topologyChanged([id]);
    this.oidc?.wake(node.machineKey);
    return { ok: true };
  }

  // ---- admin API (bearer admin key) ----

  private async admin(req: http.IncomingMessage, url: URL): Promise<unknown> {
    const auth = req.headers.authorization ?? '';
    const key = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!key || hashKey(key) !== this.store.getMeta('admin_key_hash')) throw new HttpError(401, 'admin API needs "Authorization: Bearer <admin key>" (see admin.key in the data dir)');
    const route = `${req.method} ${url.pathname}`;
    const body = req.method === 'GET' || req.method === 'DELETE' ? undefined : await readBody(req);
    if (route === 'GET /api/nodes') return { nodes: [...this.nodes.values()].map((n) => ({ ...this.adminView(n), ...(n.pendingApproval ? { pendingApproval: true } : {}) })) };
    if (route === 'POST /api/preauthkeys') {
      const b = parseJson(body!) as { user?: string; reusable?: boolean; ephemeral?: boolean; tags?: string[]; expiresInS?: number };
      if (typeof b.user !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(b.user)) throw new HttpError(400, 'user must be a login like alice@example.com');
      const tags = b.tags ?? [];
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw new HttpError(400, 'tags must be a list like ["tag:server"]');
      const expiresInS = b.expiresInS ?? 3600;
      if (typeof expiresInS !== 'number' || !(expiresInS > 0) || expiresInS > 10 * 365 * 86400) throw new HttpError(400, 'expiresInS must be a positive number of seconds (at most 10 years)');
      for (const t of tags) if (!tagAllowed(this.policy, t, { user: b.user, tags: [] })) throw new HttpError(403, `${b.user} may not apply ${t} (see tagOwners)`);
      const secret = `pierce-auth-${randomBytes(24).toString('hex')}`;
      const rec: PreAuthKeyRecord = { id: randomBytes(6).toString('hex'), hash: hashKey(secret), user: b.user, reusable: !!b.reusable, ephemeral: !!b.ephemeral, tags, expires: Date.now() + expiresInS * 1000, used: false };
      this.store.putPreAuthKey(rec);
      this.authKeys.set(rec.hash, rec);
      this.store.audit('admin', 'preauthkey.create', { id: rec.id, user: rec.user, reusable: rec.reusable, ephemeral: rec.ephemeral, tags });
      return { id: rec.id, key: secret, expires: new Date(rec.expires).toISOString() };
    }
    if (route === 'GET /api/policy') return { policy: this.store.policy() };
    if (route === 'PUT /api/policy') {
      const text = body!.toString('utf8');
      const res = checkPolicy(text, { filename: 'policy' });
      if (!res.policy) throw new HttpError(400, `policy rejected:\n${res.errors.map((e) => e.message).join('\n')}`);
      this.store.setPolicy(text);
      this.store.audit('admin', 'policy.set', { tests: res.tests.length });
      this.policy = res.policy;
      this.rebuildIndex();
      this.topologyChanged([...this.nodes.keys()], true);
      return { ok: true, warnings: res.warnings, tests: res.tests.length };
    }
    const approve = /^\/api\/nodes\/([\w-]+)\/approve$/.exec(url.pathname);
    if (approve && req.method === 'POST') return this.approveNode(approve[1]);
    const nodeRoute = /^\/api\/nodes\/([\w-]+)(\/expire|\/tags|\/expiry)?$/.exec(url.pathname);
    if (nodeRoute) {
      const [, id, action] = nodeRoute;
      const node = this.nodes.get(id);
      if (!node) throw new HttpError(404, `no node ${id}`);
      if (req.method === 'DELETE' && !action) {
        this.removeNode(id, 'admin', 'node.remove');
        return { ok: true };
      }
      if (req.method === 'POST' && action === '/expire') {
        node.keyExpiry = Date.now();
        this.store.putNode(node);
        this.store.audit('admin', 'node.expire', { id });
        this.maps.end(id);
        this.nodeChanged(node);
        return { ok: true };
      }
      if (req.method === 'POST' && action === '/expiry') {
        const b = parseJson(body!) as { disabled?: boolean };
        node.keyExpiry = b.disabled ? null : Date.now() + DEFAULT_KEY_EXPIRY_MS;
        this.store.putNode(node);
        this.store.audit('admin', 'node.expiry', { id, disabled: !!b.disabled });
        this.nodeChanged(node);
        return { ok: true };
      }
      if (req.method === 'POST' && action === '/tags') {
        const b = parseJson(body!) as { tags?: string[] };
        if (!Array.isArray(b.tags) || b.tags.some((t) => typeof t !== 'string' || !this.policy.tagOwners.has(t))) throw new HttpError(400, 'tags must be tags defined in tagOwners');
        node.tags = b.tags;
        this.store.putNode(node);
        this.store.audit('admin', 'node.tags', { id, tags: b.tags });
        this.topologyChanged([id]);
        return { ok: true };
      }
    }
    if (route === 'GET /api/audit') return { audit: this.store.auditLog(Number(url.searchParams.get('limit') ?? 100)) };
    throw new HttpError(404, `no such admin endpoint: ${route}`);
  }

  async close(): Promise<void> {
    this.oidc?.close();
    this.maps.close();
    for (const t of this.ephemeralTimers.values()) clearTimeout(t);
    this.stun?.close();
    this.stunAlt?.close();
    await this.derp?.close();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
    this.saveSoftState();
    this.store.close();
  }
}
