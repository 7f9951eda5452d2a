/**
 * A DERP client: one connection to one relay, authenticated with the node key.
 * Reconnects with exponential back-off and jitter after the connection drops;
 * received packets go to the `onPacket` callbacks (magicsock feeds them to WireGuard).
 */
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { KEY_LEN, keysEqual } from '../protocol/keys.js';
import { NONCE_LEN, secretboxOpen, secretboxSeal } from '../protocol/naclbox.js';
import { BoxKeyer } from './box-key.js';
import { encodeJson, parseServerInfoJson, type ServerInfo } from './client-info.js';
import { dialDerp } from './dial.js';
import { DerpProtocolError, DerpRefusedError } from './errors.js';
import {
  copy, encodeClientInfo, encodeFrame, FrameReader, FrameType, MAX_PACKET_SIZE, parseKeyAndPacket, parsePeerGone,
  parsePeerPresent, parsePing, parseRestarting, parseServerChallenge, parseServerInfo, parseServerKey, PING_LEN, PROTOCOL_VERSION,
  type Frame,
} from './frames.js';

export interface DerpClientOptions {
  url: string;
  /** The node's private key; it never leaves this process (only the public key and a box sealed with it do). */
  privateKey: Uint8Array;
  websocket?: boolean;
  /** Set only by relays meshing with each other. */
  meshKey?: string;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  /** Pin the relay's public key (from the DERP map), if known. */
  serverPublicKey?: Uint8Array;
  connectTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** With no frame from the relay for this long (it sends keepalives every ~60s), reconnect. */
  readTimeoutMs?: number;
  /** Bytes the socket may buffer before `send` drops packets. */
  maxBufferedBytes?: number;
  log?: (msg: string) => void;
}

export type PacketHandler = (src: Uint8Array, data: Uint8Array) => void;
export type PeerGoneHandler = (key: Uint8Array, reason: number) => void;

export interface DerpClientStats {
  packetsSent: number;
  packetsReceived: number;
  dropsNotConnected: number;
  dropsBuffered: number;
  reconnects: number;
}

type Required2 = Required<Pick<DerpClientOptions, 'connectTimeoutMs' | 'backoffMinMs' | 'backoffMaxMs' | 'readTimeoutMs' | 'maxBufferedBytes'>>;

export class DerpClient {
  readonly publicKey: Uint8Array;
  serverPublicKey: Uint8Array | null = null;
  serverInfo: ServerInfo | null = null;
  readonly stats: DerpClientStats = { packetsSent: 0, packetsReceived: 0, dropsNotConnected: 0, dropsBuffered: 0, reconnects: 0 };
  private readonly o: DerpClientOptions & Required2;
  private readonly boxKeyer: BoxKeyer;
  private stream: Duplex | null = null;
  private closed = false;
  private corked = false;
  private preferred = false;
  private watching = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readTimer: NodeJS.Timeout | null = null;
  private readonly pings = new Map<string, { resolve: (ms: number) => void; reject: (e: Error) => void; t0: number; timer: NodeJS.Timeout }>();
  private readonly packetHandlers: PacketHandler[] = [];
  private readonly goneHandlers: PeerGoneHandler[] = [];
  private readonly presentHandlers: ((key: Uint8Array) => void)[] = [];
  private readonly connectHandlers: (() => void)[] = [];
  private readonly disconnectHandlers: (() => void)[] = [];

  constructor(o: DerpClientOptions) {
    this.o = { connectTimeoutMs: 10_000, backoffMinMs: 100, backoffMaxMs: 30_000, readTimeoutMs: 150_000, maxBufferedBytes: 1024 * 1024, ...o };
    this.boxKeyer = new BoxKeyer(o.privateKey);
    this.publicKey = this.boxKeyer.publicKey;
  }

  get connected(): boolean {
    return this.stream !== null;
  }

  onPacket(cb: PacketHandler): void {
    this.packetHandlers.push(cb);
  }
  onPeerGone(cb: PeerGoneHandler): void {
    this.goneHandlers.push(cb);
  }
  /** Mesh only: a client connected to the watched relay. */
  onPeerPresent(cb: (key: Uint8Array) => void): void {
    this.presentHandlers.push(cb);
  }
  onConnect(cb: () => void): void {
    this.connectHandlers.push(cb);
  }
  onDisconnect(cb: () => void): void {
    this.disconnectHandlers.push(cb);
  }

  /**
   * Connects once. Resolves when the relay accepted us; rejects on failure. After any
   * failure other than a refusal, the client keeps retrying in the background until close().
   */
  async connect(): Promise<void> {
    if (this.closed) throw new Error('derp: client closed');
    try {
      await this.attemptOnce();
    } catch (err) {
      if (!(err instanceof DerpRefusedError)) this.scheduleReconnect();
      throw err;
    }
  }

  private async attemptOnce(): Promise<void> {
    const stream = await dialDerp({ url: this.o.url, websocket: this.o.websocket, tls: this.o.tls, timeoutMs: this.o.connectTimeoutMs });
    if (this.closed) {
      stream.destroy();
      throw new Error('derp: client closed');
    }
    stream.on('error', () => {});
    stream.on('end', () => stream.destroy());
    await new Promise<void>((resolve, reject) => {
      const reader = new FrameReader();
      let serverKey: Uint8Array | null = null;
      let shared: Uint8Array | null = null;
      let refusal: string | null = null;
      let established = false;
      const timer = setTimeout(() => fail(new Error('derp: handshake timed out')), this.o.connectTimeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        stream.destroy();
        reject(err);
      };
      const handshakeStep = (f: Frame): void => {
        if (!serverKey) {
          if (f.type !== FrameType.ServerKey) throw new DerpProtocolError('expected the server key frame first');
          serverKey = parseServerKey(f);
          if (this.o.serverPublicKey && !keysEqual(serverKey, this.o.serverPublicKey)) throw new DerpProtocolError('relay key does not match the pinned key');
          shared = this.boxKeyer.shared(serverKey);
          if (!shared) throw new DerpProtocolError('server key is not a usable X25519 key');
          const nonce = new Uint8Array(randomBytes(NONCE_LEN));
          const challenge = parseServerChallenge(f);
          const info = encodeJson({
            version: PROTOCOL_VERSION, meshKey: this.o.meshKey, canAckPings: true,
            ...(challenge ? { challenge: Buffer.from(challenge).toString('hex') } : {}),
          });
          stream.write(encodeClientInfo(this.publicKey, nonce, secretboxSeal(shared, nonce, info)));
        } else if (f.type === FrameType.Health) {
          const msg = Buffer.from(f.body.subarray(0, 200)).toString('utf8');
          if (msg.startsWith('refused')) refusal = msg;
        } else if (f.type === FrameType.ServerInfo) {
          const { nonce, sealed } = parseServerInfo(f);
          const plain = shared && secretboxOpen(shared, nonce, sealed);
          if (!plain) throw new DerpProtocolError('server info does not open: not the relay that sent the server key');
          this.serverInfo = parseServerInfoJson(plain);
          this.serverPublicKey = serverKey;
          established = true;
          clearTimeout(timer);
          this.established(stream);
          resolve();
        }
      };
      stream.on('data', (data: Buffer) => {
        try {
          for (const f of reader.push(data)) {
            if (established) this.handleFrame(f);
            else handshakeStep(f);
          }
          if (established) this.armReadTimer(stream);
        } catch (err) {
          this.o.log?.(`derp client: ${(err as Error).message}`);
          if (established) stream.destroy();
          else fail(err as Error);
        }
      });
      stream.once('close', () => {
        if (established) this.lost(stream);
        else fail(refusal ? new DerpRefusedError(`derp: ${refusal}`) : new Error('derp: connection closed during handshake'));
      });
    });
  }

  private established(stream: Duplex): void {
    this.attempt = 0;
    this.stream = stream;
    this.armReadTimer(stream);
    if (this.preferred) stream.write(encodeFrame(FrameType.NotePreferred, Uint8Array.of(1)));
    if (this.watching) stream.write(encodeFrame(FrameType.WatchConns));
    for (const h of this.connectHandlers) h();
  }

  private armReadTimer(stream: Duplex): void {
    if (this.readTimer) clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => stream.destroy(), this.o.readTimeoutMs);
    this.readTimer.unref();
  }

  private lost(stream: Duplex): void {
    if (this.stream !== stream) return;
    this.stream = null;
    if (this.readTimer) clearTimeout(this.readTimer);
    for (const [id, p] of this.pings) {
      clearTimeout(p.timer);
      p.reject(new Error('derp: connection lost'));
      this.pings.delete(id);
    }
    for (const h of this.disconnectHandlers) h();
    this.scheduleReconnect();
  }

  private scheduleReconnect(delayMs?: number): void {
    if (this.closed || this.retryTimer) return;
    // Exponential back-off with ±50% jitter, so clients of a restarted relay do not return in step.
    const base = Math.min(this.o.backoffMaxMs, this.o.backoffMinMs * 2 ** this.attempt);
    const ms = delayMs ?? base * (0.5 + Math.random());
    this.attempt = Math.min(this.attempt + 1, 30);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.closed) return;
      this.stats.reconnects++;
      this.attemptOnce().catch((err: Error) => {
        this.o.log?.(`derp client: reconnect to ${this.o.url} failed: ${err.message}`);
        if (!(err instanceof DerpRefusedError)) this.scheduleReconnect();
      });
    }, ms);
  }

  private handleFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.RecvPacket: {
        const { key, packet } = parseKeyAndPacket(f, 'recv packet');
        this.stats.packetsReceived++;
        const src = copy(key);
        for (const h of this.packetHandlers) h(src, packet);
        return;
      }
      case FrameType.PeerGone: {
        const { key, reason } = parsePeerGone(f);
        for (const h of this.goneHandlers) h(key, reason);
        return;
      }
      case FrameType.PeerPresent: {
        const key = parsePeerPresent(f);
        for (const h of this.presentHandlers) h(key);
        return;
      }
      case FrameType.Ping:
        this.stream?.write(encodeFrame(FrameType.Pong, parsePing(f, 'ping')));
        return;
      case FrameType.Pong: {
        const id = Buffer.from(parsePing(f, 'pong')).toString('hex');
        const p = this.pings.get(id);
        if (p) {
          this.pings.delete(id);
          clearTimeout(p.timer);
          p.resolve(performance.now() - p.t0);
        }
        return;
      }
      case FrameType.Restarting: {
        const { reconnectInMs } = parseRestarting(f);
        const s = this.stream;
        this.attempt = 0;
        if (s) {
          this.stream = null;
          s.destroy();
          for (const h of this.disconnectHandlers) h();
          this.scheduleReconnect(Math.min(reconnectInMs, this.o.backoffMaxMs));
        }
        return;
      }
      default:
        return; // keepalive, health, and frame types from newer relays
    }
  }

  private writeFrame(frame: Buffer): boolean {
    const s = this.stream;
    if (!s) {
      this.stats.dropsNotConnected++;
      return false;
    }
    if (s.writableLength > this.o.maxBufferedBytes) {
      this.stats.dropsBuffered++;
      return false;
    }
    // Packets sent in one tick leave in one writev, not one syscall each.
    if (!this.corked) {
      this.corked = true;
      s.cork();
      process.nextTick(() => {
        this.corked = false;
        s.uncork();
      });
    }
    s.write(frame);
    return true;
  }

  /** Sends one packet to `dst` through the relay; dropped (and counted) when not connected or backed up. */
  send(dst: Uint8Array, packet: Uint8Array): boolean {
    if (dst.length !== KEY_LEN) throw new Error(`derp: destination key must be ${KEY_LEN} bytes`);
    if (packet.length > MAX_PACKET_SIZE) throw new Error(`derp: packet of ${packet.length} bytes exceeds ${MAX_PACKET_SIZE}`);
    const ok = this.writeFrame(encodeFrame(FrameType.SendPacket, dst, packet));
    if (ok) this.stats.packetsSent++;
    return ok;
  }

  /** Mesh only: hands a packet from `src` to the relay, for its local client `dst`. */
  forwardPacket(src: Uint8Array, dst: Uint8Array, packet: Uint8Array): boolean {
    return this.writeFrame(encodeFrame(FrameType.ForwardPacket, src, dst, packet));
  }

  /** Mesh only: asks the relay to announce its clients (peer present / peer gone). */
  watchConns(): void {
    this.watching = true;
    this.stream?.write(encodeFrame(FrameType.WatchConns));
  }

  /** Tells the relay whether this is our home relay (it prioritises and reports accordingly). */
  notePreferred(home: boolean): void {
    this.preferred = home;
    this.stream?.write(encodeFrame(FrameType.NotePreferred, Uint8Array.of(home ? 1 : 0)));
  }

  /** Round trip through the relay, in milliseconds. */
  ping(timeoutMs = 5000): Promise<number> {
    const s = this.stream;
    if (!s) return Promise.reject(new Error('derp: not connected'));
    const data = new Uint8Array(randomBytes(PING_LEN));
    const id = Buffer.from(data).toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new Error('derp: ping timed out'));
      }, timeoutMs);
      this.pings.set(id, { resolve, reject, t0: performance.now(), timer });
      s.write(encodeFrame(FrameType.Ping, data));
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.readTimer) clearTimeout(this.readTimer);
    for (const p of this.pings.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('derp: client closed'));
    }
    this.pings.clear();
    const s = this.stream;
    this.stream = null;
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
  }
}
