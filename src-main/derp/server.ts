/**
 * The DERP relay: accepts clients over `GET /derp` (Upgrade: DERP, or WebSocket with
 * subprotocol "derp"), checks that each holds the node key it claims, and forwards
 * packets by destination key. It never sees plaintext: payloads are WireGuard/disco
 * ciphertext. Protocol: docs/derp-protocol.md.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WebSocketServer, createWebSocketStream } from 'ws';
import { generateKeyPair, KEY_LEN } from '../protocol/keys.js';
import { NONCE_LEN, secretboxOpen, secretboxSeal } from '../protocol/naclbox.js';
import { BoxKeyer } from './box-key.js';
import { encodeJson, parseClientInfoJson } from './client-info.js';
import { ClientConn, type ConnLimits } from './client-conn.js';
import { DerpProtocolError } from './errors.js';
import {
  CHALLENGE_LEN, encodeFrame, encodeServerInfo, encodeServerKey, FrameReader, FrameType, parseClientInfo, parseForwardPacket,
  parseKeyAndPacket, parsePing, PeerGoneReason, PROTOCOL_VERSION, type Frame,
} from './frames.js';
import { MeshPeer } from './mesh.js';
import { StunServer } from './stun-server.js';
import { TokenBucket } from './token-bucket.js';

export interface DerpLimits extends ConnLimits {
  /** New connections accepted per second (server-wide) and burst. */
  acceptPerSecond: number;
  acceptBurst: number;
  handshakeTimeoutMs: number;
  /** How long an `admit` answer is cached: yes / no. */
  admitCacheMs: number;
  admitNegativeCacheMs: number;
}

export const DEFAULT_LIMITS: DerpLimits = {
  maxQueuedFrames: 256,
  maxQueuedBytes: 512 * 1024,
  highWaterBytes: 256 * 1024,
  bytesPerSecond: 0,
  bytesBurst: 1024 * 1024,
  keepAliveMs: 60_000,
  acceptPerSecond: 500,
  acceptBurst: 2000,
  handshakeTimeoutMs: 10_000,
  admitCacheMs: 60_000,
  admitNegativeCacheMs: 5_000,
};
const ADMIT_CACHE_MAX = 10_000;
const SENDERS_MAX = 1024;

export type DerpLog = (msg: string) => void;

export interface DerpServerOptions {
  privateKey?: Uint8Array;
  /** Shared secret that relays of one region present to each other. */
  meshKey?: string;
  /** URLs (http(s)://host:port/derp) of the other relays in this region. */
  meshWith?: string[];
  /** Extra CA / verification for mesh connections to TLS peers. */
  meshTls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  admit?: (nodeKey: Uint8Array) => Promise<boolean>;
  limits?: Partial<DerpLimits>;
  log?: DerpLog;
}

export interface DerpStats {
  clients: number;
  meshPeersConnected: number;
  remoteClients: number;
  packetsForwarded: number;
  bytesForwarded: number;
  packetsForwardedToMesh: number;
  dropsQueueFull: number;
  /** Bytes waiting in per-client queues now (beyond what the sockets buffer). */
  queuedBytes: number;
  dropsNoDestination: number;
  rateLimited: number;
  acceptRefused: number;
  admitRefused: number;
  /** Connected clients closed because the admit check stopped admitting their key. */
  admitRevoked: number;
  protocolErrors: number;
  replaced: number;
}

export class DerpServer {
  readonly publicKey: Uint8Array;
  private readonly privateKey: Uint8Array;
  private readonly boxKeyer: BoxKeyer;
  private readonly limits: DerpLimits;
  private readonly log: DerpLog;
  private readonly clients = new Map<string, ClientConn>();
  private readonly pending = new Set<Duplex>();
  private readonly watchers = new Set<ClientConn>();
  /** Clients of other relays in the mesh: key (hex) -> the peer relay that has it. */
  private readonly remote = new Map<string, MeshPeer>();
  private readonly meshPeers: MeshPeer[] = [];
  private readonly admitCache = new Map<string, { ok: boolean; until: number }>();
  private readonly acceptBucket: TokenBucket;
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 2 * (MAX_WS_MESSAGE),
    handleProtocols: (protocols) => (protocols.has('derp') ? 'derp' : false),
  });
  private readonly counters = {
    packetsForwarded: 0, bytesForwarded: 0, packetsForwardedToMesh: 0, dropsNoDestination: 0, rateLimited: 0,
    acceptRefused: 0, admitRefused: 0, admitRevoked: 0, protocolErrors: 0, replaced: 0, dropsQueueFullClosed: 0,
  };
  private closed = false;
  private revalidateTimer: NodeJS.Timeout | null = null;
  private revalidating = false;

  constructor(private readonly o: DerpServerOptions = {}) {
    this.privateKey = o.privateKey ?? generateKeyPair().privateKey;
    this.boxKeyer = new BoxKeyer(this.privateKey);
    this.publicKey = this.boxKeyer.publicKey;
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.log = o.log ?? (() => {});
    this.acceptBucket = new TokenBucket(this.limits.acceptPerSecond, this.limits.acceptBurst);
    if (o.admit) {
      // A node admitted once is asked about again as its cached answer runs out, so a key
      // that expires (or is removed) loses its connection too, not only its next one.
      this.revalidateTimer = setInterval(() => void this.revalidate(), this.limits.admitCacheMs);
      this.revalidateTimer.unref();
    }
    if (o.meshWith?.length && !o.meshKey) throw new Error('derp: --mesh-with needs a mesh key');
    for (const url of o.meshWith ?? []) {
      this.meshPeers.push(
        new MeshPeer({
          url, privateKey: this.privateKey, meshKey: o.meshKey!, tls: o.meshTls, log: this.log,
          onPresent: (k, peer) => this.remote.set(Buffer.from(k).toString('hex'), peer),
          onGone: (k, peer) => {
            const hex = Buffer.from(k).toString('hex');
            if (this.remote.get(hex) === peer) this.remote.delete(hex);
          },
          onReset: (peer) => {
            for (const [k, p] of this.remote) if (p === peer) this.remote.delete(k);
          },
        }),
      );
    }
  }

  /** Installs /derp and /derp/probe handlers on an HTTP(S) server; other paths are left alone. */
  attach(server: http.Server | https.Server): void {
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head);
    });
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handleRequest(req, res);
    });
  }

  /** For routers that dispatch themselves: returns false when the path is not DERP's. */
  handleRequest(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const path = pathOf(req);
    if (path === '/derp/probe') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-store' }).end();
      return true;
    }
    if (path === '/derp') {
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'DERP' }).end('DERP requires a connection upgrade (Upgrade: DERP or websocket)\n');
      return true;
    }
    return false;
  }

  handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (pathOf(req) !== '/derp') return false;
    socket.on('error', () => {});
    if (this.closed || !this.acceptBucket.tryTake(1)) {
      this.counters.acceptRefused++;
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\n\r\n');
      return true;
    }
    const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
    if (upgrade === 'websocket') {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const stream = createWebSocketStream(ws);
        this.accept(stream);
      });
    } else if (upgrade === 'derp') {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n' +
          `Derp-Version: ${PROTOCOL_VERSION}\r\nDerp-Public-Key: ${Buffer.from(this.publicKey).toString('hex')}\r\n\r\n`,
      );
      if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
      if (head.length) socket.unshift(head);
      this.accept(socket);
    } else {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\nexpected Upgrade: DERP or websocket\n');
    }
    return true;
  }

  /** Runs the handshake on an upgraded byte stream, then the frame loop. */
  private accept(stream: Duplex): void {
    this.pending.add(stream);
    stream.on('error', () => {});
    // HTTP servers keep upgraded sockets half-open; a client that hung up is gone.
    stream.on('end', () => stream.destroy());
    const reader = new FrameReader();
    let conn: ClientConn | null = null;
    let handshaking = true;
    const timer = setTimeout(() => fail(new DerpProtocolError('handshake timeout')), this.limits.handshakeTimeoutMs);
    const fail = (err: Error) => {
      if (err instanceof DerpProtocolError) {
        this.counters.protocolErrors++;
        this.log(`derp: closing connection: ${err.message}`);
      }
      stream.destroy();
    };
    stream.on('close', () => {
      clearTimeout(timer);
      this.pending.delete(stream);
      if (conn) this.unregister(conn);
    });
    const challenge = new Uint8Array(randomBytes(CHALLENGE_LEN));
    stream.write(encodeServerKey(this.publicKey, challenge));

    const onFrames = async (frames: Frame[]) => {
      for (const f of frames) {
        if (handshaking) {
          handshaking = false;
          stream.pause();
          try {
            conn = await this.handshake(f, stream, challenge);
          } finally {
            clearTimeout(timer);
          }
          if (!conn) return;
          if (!stream.destroyed) stream.resume();
          continue;
        }
        if (!conn) return;
        this.handleFrame(conn, f);
      }
    };
    let chain = Promise.resolve();
    stream.on('data', (data: Buffer) => {
      let frames: Frame[];
      try {
        frames = reader.push(data);
      } catch (err) {
        fail(err as Error);
        return;
      }
      if (!frames.length) return;
      if (!handshaking && conn) {
        try {
          for (const f of frames) this.handleFrame(conn, f);
        } catch (err) {
          fail(err as Error);
        }
        return;
      }
      chain = chain.then(() => onFrames(frames)).catch((err: Error) => fail(err));
    });
  }

  private async handshake(f: Frame, stream: Duplex, challenge: Uint8Array): Promise<ClientConn | null> {
    if (f.type !== FrameType.ClientInfo) throw new DerpProtocolError(`expected client info, got frame type 0x${f.type.toString(16)}`);
    const { clientKey, nonce, sealed } = parseClientInfo(f);
    const shared = this.boxKeyer.shared(clientKey);
    const plain = shared && secretboxOpen(shared, nonce, sealed);
    if (!shared || !plain) throw new DerpProtocolError('client info does not open: the client does not hold the key it claims');
    const info = parseClientInfoJson(plain);
    if (info.challenge !== Buffer.from(challenge).toString('hex')) throw new DerpProtocolError('client info does not answer this connection\'s challenge (replayed?)');
    let isMesh = false;
    if (info.meshKey !== undefined) {
      if (!this.o.meshKey || !safeEqual(info.meshKey, this.o.meshKey)) {
        this.refuse(stream, 'refused: bad mesh key');
        return null;
      }
      isMesh = true;
    } else if (this.o.admit && !(await this.admitted(clientKey))) {
      this.counters.admitRefused++;
      this.refuse(stream, 'refused: node key not admitted by this relay');
      return null;
    }
    if (stream.destroyed || this.closed) return null;
    const replyNonce = new Uint8Array(randomBytes(NONCE_LEN));
    const reply = encodeJson({
      version: PROTOCOL_VERSION,
      tokenBucketBytesPerSecond: this.limits.bytesPerSecond,
      tokenBucketBytesBurst: this.limits.bytesBurst,
    });
    stream.write(encodeServerInfo(replyNonce, secretboxSeal(shared, replyNonce, reply)));
    this.pending.delete(stream);
    const conn = new ClientConn(clientKey, stream, isMesh, this.limits);
    conn.onRateLimited = () => this.counters.rateLimited++;
    this.register(conn);
    return conn;
  }

  private refuse(stream: Duplex, reason: string): void {
    this.log(`derp: ${reason}`);
    stream.end(encodeFrame(FrameType.Health, Buffer.from(reason)));
    setTimeout(() => stream.destroy(), 1000).unref();
  }

  private async revalidate(): Promise<void> {
    if (this.revalidating) return; // a slow admit callback must not stack rounds
    this.revalidating = true;
    try {
      await this.revalidateAll();
    } finally {
      this.revalidating = false;
    }
  }

  private async revalidateAll(): Promise<void> {
    for (const conn of [...this.clients.values()]) {
      if (conn.isMesh || conn.closed) continue;
      if (await this.admitted(conn.key)) continue;
      if (this.closed) return;
      if (this.clients.get(conn.keyHex) !== conn) continue;
      this.counters.admitRevoked++;
      this.log('derp: closing a connection: node key no longer admitted');
      conn.closeWith(encodeFrame(FrameType.Health, Buffer.from('refused: node key no longer admitted')));
      this.unregister(conn);
    }
  }

  private async admitted(key: Uint8Array): Promise<boolean> {
    const hex = Buffer.from(key).toString('hex');
    const now = Date.now();
    const hit = this.admitCache.get(hex);
    if (hit && hit.until > now) return hit.ok;
    let ok = false;
    try {
      ok = await this.o.admit!(key);
    } catch (err) {
      this.log(`derp: admit callback failed: ${(err as Error).message}`);
    }
    if (this.admitCache.size >= ADMIT_CACHE_MAX) this.admitCache.clear();
    this.admitCache.set(hex, { ok, until: now + (ok ? this.limits.admitCacheMs : this.limits.admitNegativeCacheMs) });
    return ok;
  }

  private register(conn: ClientConn): void {
    const old = this.clients.get(conn.keyHex);
    if (old) {
      // Same key reconnected (new network, restarted process): the newest connection wins.
      this.counters.replaced++;
      this.clients.delete(conn.keyHex);
      old.close();
    }
    this.clients.set(conn.keyHex, conn);
    if (!conn.isMesh) for (const w of this.watchers) w.write(encodeFrame(FrameType.PeerPresent, conn.key));
  }

  private unregister(conn: ClientConn): void {
    conn.close();
    this.watchers.delete(conn);
    if (this.clients.get(conn.keyHex) !== conn) return;
    this.clients.delete(conn.keyHex);
    this.counters.dropsQueueFullClosed += conn.dropsQueueFull;
    const gone = encodeFrame(FrameType.PeerGone, conn.key, Uint8Array.of(PeerGoneReason.Disconnected));
    for (const s of conn.senders) this.clients.get(s)?.write(gone);
    if (!conn.isMesh) for (const w of this.watchers) w.write(gone);
  }

  private handleFrame(conn: ClientConn, f: Frame): void {
    switch (f.type) {
      case FrameType.SendPacket: {
        const { key, packet } = parseKeyAndPacket(f, 'send packet');
        conn.charge(f.body.length);
        this.route(conn, key, packet);
        return;
      }
      case FrameType.ForwardPacket: {
        if (!conn.isMesh) throw new DerpProtocolError('forward packet from a non-mesh client');
        const { src, dst, packet } = parseForwardPacket(f);
        const target = this.clients.get(Buffer.from(dst).toString('hex'));
        if (target) this.deliver(target, src, packet);
        else this.counters.dropsNoDestination++;
        return;
      }
      case FrameType.NotePreferred:
        if (f.body.length < 1) throw new DerpProtocolError('note preferred: empty body');
        conn.preferred = f.body[0] !== 0;
        return;
      case FrameType.Ping:
        conn.write(encodeFrame(FrameType.Pong, parsePing(f, 'ping')));
        return;
      case FrameType.WatchConns:
        if (!conn.isMesh) throw new DerpProtocolError('watch conns from a non-mesh client');
        this.watchers.add(conn);
        for (const c of this.clients.values()) if (!c.isMesh) conn.write(encodeFrame(FrameType.PeerPresent, c.key));
        return;
      case FrameType.ClosePeer: {
        if (!conn.isMesh) throw new DerpProtocolError('close peer from a non-mesh client');
        if (f.body.length < KEY_LEN) throw new DerpProtocolError('close peer: short body');
        this.clients.get(Buffer.from(f.body.subarray(0, KEY_LEN)).toString('hex'))?.close();
        return;
      }
      case FrameType.ServerKey:
      case FrameType.ClientInfo:
      case FrameType.ServerInfo:
        throw new DerpProtocolError(`unexpected frame type 0x${f.type.toString(16)} after the handshake`);
      default:
        // Keepalive, pong and frame types from newer clients are ignored, as the protocol requires.
        return;
    }
  }

  private route(src: ClientConn, dst: Uint8Array, packet: Uint8Array): void {
    const dstHex = Buffer.from(dst).toString('hex');
    const target = this.clients.get(dstHex);
    if (target) {
      if (!target.senders.has(src.keyHex)) {
        if (target.senders.size >= SENDERS_MAX) target.senders.delete(target.senders.values().next().value!);
        target.senders.add(src.keyHex);
      }
      this.deliver(target, src.key, packet);
      return;
    }
    const peer = this.remote.get(dstHex);
    if (peer && peer.forward(src.key, dst, packet)) {
      this.counters.packetsForwardedToMesh++;
      return;
    }
    this.counters.dropsNoDestination++;
    src.write(encodeFrame(FrameType.PeerGone, dst, Uint8Array.of(PeerGoneReason.NotHere)));
  }

  private deliver(target: ClientConn, src: Uint8Array, packet: Uint8Array): void {
    this.counters.packetsForwarded++;
    this.counters.bytesForwarded += packet.length;
    target.write(encodeFrame(FrameType.RecvPacket, src, packet));
  }

  /** Starts the mesh connections (if any); resolves once each has been tried once. */
  async startMesh(): Promise<void> {
    await Promise.all(this.meshPeers.map((p) => p.start()));
  }

  stats(): DerpStats {
    let dropsQueueFull = this.counters.dropsQueueFullClosed;
    let queuedBytes = 0;
    for (const c of this.clients.values()) {
      dropsQueueFull += c.dropsQueueFull;
      queuedBytes += c.queuedBytes;
    }
    return {
      clients: [...this.clients.values()].filter((c) => !c.isMesh).length,
      meshPeersConnected: this.meshPeers.filter((p) => p.connected).length,
      remoteClients: this.remote.size,
      packetsForwarded: this.counters.packetsForwarded,
      bytesForwarded: this.counters.bytesForwarded,
      packetsForwardedToMesh: this.counters.packetsForwardedToMesh,
      dropsQueueFull,
      queuedBytes,
      dropsNoDestination: this.counters.dropsNoDestination,
      rateLimited: this.counters.rateLimited,
      acceptRefused: this.counters.acceptRefused,
      admitRefused: this.counters.admitRefused,
      admitRevoked: this.counters.admitRevoked,
      protocolErrors: this.counters.protocolErrors,
      replaced: this.counters.replaced,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.revalidateTimer) clearInterval(this.revalidateTimer);
    await Promise.all(this.meshPeers.map((p) => p.close()));
    for (const c of [...this.clients.values()]) c.close();
    for (const s of this.pending) s.destroy();
    this.wss.close();
  }
}

const MAX_WS_MESSAGE = 128 * 1024;

function pathOf(req: http.IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface ServeDerpOptions extends DerpServerOptions {
  /** "host:port", "[v6]:port" or ":port" (all interfaces). Port 0 picks a free one. */
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  /** UDP port for the STUN server; omitted = no STUN server. */
  stunPort?: number;
  stunHost?: string;
}

export interface ServedDerp {
  url: string;
  port: number;
  derp: DerpServer;
  stun: StunServer | null;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  if (!m) throw new Error(`derp: --listen must be HOST:PORT, [V6]:PORT or :PORT, got "${listen}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`derp: port ${port} out of range`);
  return { host: m[1] ?? (m[2] || undefined), port };
}

/** A standalone relay: HTTP(S) server + DERP (+ STUN); `url` is the /derp URL clients use. */
export async function serveDerp(o: ServeDerpOptions): Promise<ServedDerp> {
  const { host, port } = parseListen(o.listen);
  const derp = new DerpServer(o);
  const notFound = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (!derp.handleRequest(req, res)) res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  };
  const tls = o.tlsCert && o.tlsKey;
  const server = tls
    ? https.createServer({ cert: readFileSync(o.tlsCert!), key: readFileSync(o.tlsKey!) }, notFound)
    : http.createServer(notFound);
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!derp.handleUpgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  let stun: StunServer | null = null;
  try {
    if (o.stunPort !== undefined) stun = await StunServer.listen({ port: o.stunPort, host: o.stunHost ?? host });
    await derp.startMesh();
  } catch (err) {
    stun?.close();
    server.close();
    await derp.close();
    throw err;
  }
  const shownHost = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    url: `${tls ? 'https' : 'http'}://${shownHost}:${actual}/derp`,
    port: actual,
    derp,
    stun,
    async close() {
      stun?.close();
      await derp.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
