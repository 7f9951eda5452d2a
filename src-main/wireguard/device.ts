/**
 * A userspace WireGuard device (whitepaper §5-§6): packets from the TUN device are routed to a
 * peer by the cryptokey routing table, encrypted and sent through the Bind; datagrams from the
 * Bind are authenticated, replay-checked, source-checked and written to the TUN device.
 *
 * Design:
 * - Queues: each peer stages outgoing packets (bounded, oldest dropped) until it has a usable
 *   keypair; a TUN batch is grouped per peer and each group leaves as one Bind batch. Everything
 *   runs on the event loop, so there are no locks; per-packet work avoids allocation except the
 *   output datagram itself.
 * - Keypairs: a peer holds current (sends), previous (still decrypts after a rekey, so packets in
 *   flight are not lost) and next. The initiator makes a new keypair current as soon as the
 *   response arrives; the responder keeps it as next until the first data packet under it
 *   arrives (key confirmation), then rotates next -> current -> previous. When both sides rekey
 *   at once (crossed handshakes), the newer keypair wins `current` and the one the peer still
 *   sends with is kept as `previous` (a refinement over wireguard-go, which can drop in-flight
 *   packets in that case).
 * - Index table: our random 32-bit receiver indices map to a keypair or an outstanding initiation.
 * - Timers: one ticker compares per-peer deadlines (retransmit handshake, send keepalive, new
 *   handshake, zero keys, persistent keepalive) with the clock, so the hot path only stores numbers.
 * - Under load (more handshake messages per second than `handshakeLoadThreshold`), handshake
 *   messages need a valid mac2, else they get a cookie reply (§5.3).
 */
import { type AeadBackend, selectAead } from './aead.js';
import { AllowedIps, parseCidr } from './allowed-ips.js';
import type { Bind, BindEndpoint, ReceivedDatagram } from './bind.js';
import { CookieChecker, CookieGenerator } from './cookie.js';
import { AEAD_TAG_LEN, compareBytes, dh, equalBytes, randomBytes, writeCounter } from './crypto.js';
import { Keypair } from './keypair.js';
import {
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESP_RECEIVER,
  TRANSPORT_COUNTER,
  TRANSPORT_HEADER_SIZE,
  TRANSPORT_RECEIVER,
  messageType,
  readU32,
  writeHeader,
  writeU32,
} from './messages.js';
import { consumeInitiation, consumeResponse, createInitiation, createResponse, ZERO_PSK } from './noise.js';
import { Peer } from './peer.js';
import { type WireGuardTimers, resolveTimers } from './timers.js';
import type { TunDevice } from './tun.js';
import { publicKeyOf } from '../protocol/keys.js';

export interface PeerConfig {
  publicKey: Uint8Array;
  presharedKey?: Uint8Array;
  /** CIDRs routed to this peer (and accepted as inner source addresses from it). */
  allowedIps: string[];
  endpoint?: string;
  /** Seconds; 0/undefined = off. */
  persistentKeepalive?: number;
}

export interface DeviceOptions {
  privateKey: Uint8Array;
  tun: TunDevice;
  bind: Bind;
  /** Transport AEAD; default: selectAead() (node:crypto when it passes its self-test, else @noble). */
  aead?: AeadBackend;
  /** TEST-ONLY overrides of the whitepaper §6.1 constants (e.g. to run rekeys in milliseconds). */
  timers?: Partial<WireGuardTimers>;
  /** Handshake messages per second above which the device is "under load" and demands mac2. Default 128; 0 = always. */
  handshakeLoadThreshold?: number;
  log?: (msg: string) => void;
}

export interface PeerStatus {
  publicKey: Uint8Array;
  endpoint?: string;
  /** Epoch ms of the last completed handshake. */
  lastHandshakeMs?: number;
  rxBytes: number;
  txBytes: number;
  allowedIps: string[];
  persistentKeepalive?: number;
}

/** wireguard-go keeps "under load" for a second after the load goes away. */
const UNDER_LOAD_AFTER_MS = 1_000;
const DEFAULT_LOAD_THRESHOLD = 128;
/** Padding of the plaintext to a multiple of 16 bytes (whitepaper §5.4.6). */
const PADDING_MULTIPLE = 16;
/** Counter high words at or above this make a counter >= 2^53 (see timers.ts MAX_COUNTER). */
const COUNTER_HIGH_LIMIT = 0x20_0000;

type IndexEntry = { peer: Peer; keypair?: Keypair };

export class Device {
  private privateKey: Uint8Array;
  private _publicKey: Uint8Array;
  private readonly tun: TunDevice;
  private readonly bind: Bind;
  readonly aead: AeadBackend;
  private readonly t: WireGuardTimers;
  private readonly log: (msg: string) => void;
  private readonly loadThreshold: number;
  private readonly peersByKey = new Map<string, Peer>();
  private readonly routes = new AllowedIps<Peer>();
  private readonly indices = new Map<number, IndexEntry>();
  private readonly checker: CookieChecker;
  private ticker: ReturnType<typeof setInterval> | undefined;
  private handshakesThisSecond = 0;
  /** Orders keypairs by creation (milliseconds can tie). */
  private generation = 0;
  private loadSecond = 0;
  private underLoadUntil = 0;
  private isUp = false;
  private closed = false;

  constructor(o: DeviceOptions) {
    this.privateKey = o.privateKey.slice();
    this._publicKey = publicKeyOf(this.privateKey);
    this.tun = o.tun;
    this.bind = o.bind;
    this.aead = o.aead ?? selectAead();
    this.t = resolveTimers(o.timers);
    this.log = o.log ?? (() => {});
    this.loadThreshold = o.handshakeLoadThreshold ?? DEFAULT_LOAD_THRESHOLD;
    this.checker = new CookieChecker(this._publicKey, this.t.cookieSecretMaxAgeMs, Date.now);
  }

  get publicKey(): Uint8Array {
    return this._publicKey.slice();
  }

  async up(): Promise<void> {
    if (this.isUp) return;
    await this.bind.open((batch) => this.onDatagrams(batch));
    this.tun.start(
      (packets) => this.onTunPackets(packets),
      (err) => this.log(`tun error: ${err.message}`),
    );
    const tick = Math.max(2, Math.min(100, Math.floor(Math.min(this.t.rekeyTimeoutMs, this.t.keepaliveTimeoutMs) / 20)));
    this.ticker = setInterval(() => this.onTick(), tick);
    this.isUp = true;
    for (const p of this.peersByKey.values()) if (p.persistentKeepaliveSec > 0) this.sendKeepalive(p);
  }

  setPeer(c: PeerConfig): void {
    if (c.publicKey.length !== 32) throw new Error('peer public key must be 32 bytes');
    if (c.presharedKey && c.presharedKey.length !== 32) throw new Error('preshared key must be 32 bytes');
    const cidrs = c.allowedIps.map((a) => parseCidr(a));
    const endpoint = c.endpoint !== undefined ? this.bind.parseEndpoint(c.endpoint) : undefined;
    const id = keyId(c.publicKey);
    let p = this.peersByKey.get(id);
    if (!p) {
      if (equalBytes(c.publicKey, this._publicKey)) throw new Error('a peer cannot have the device\'s own public key');
      const ss = dh(this.privateKey, c.publicKey);
      if (!ss) throw new Error('invalid peer public key (low-order point)');
      p = new Peer(c.publicKey.slice(), ss, new CookieGenerator(c.publicKey, this.t.cookieSecretMaxAgeMs, Date.now));
      this.peersByKey.set(id, p);
    }
    p.presharedKey = c.presharedKey ? c.presharedKey.slice() : ZERO_PSK;
    this.routes.removeValue(p);
    for (const cidr of cidrs) this.routes.insert(cidr, p);
    p.allowedIps = [...c.allowedIps];
    if (endpoint) p.endpoint = endpoint;
    const pk = c.persistentKeepalive ?? 0;
    const turnedOn = pk > 0 && p.persistentKeepaliveSec !== pk;
    p.persistentKeepaliveSec = pk;
    if (pk === 0) p.persistentKeepaliveAt = 0;
    if (turnedOn && this.isUp) this.sendKeepalive(p);
  }

  removePeer(publicKey: Uint8Array): void {
    const id = keyId(publicKey);
    const p = this.peersByKey.get(id);
    if (!p) return;
    this.peersByKey.delete(id);
    this.routes.removeValue(p);
    this.dropSessions(p);
    p.staged = [];
  }

  peers(): PeerStatus[] {
    return [...this.peersByKey.values()].map((p) => ({
      publicKey: p.publicKey.slice(),
      endpoint: p.endpoint?.toString(),
      lastHandshakeMs: p.lastHandshakeMs,
      rxBytes: p.rxBytes,
      txBytes: p.txBytes,
      allowedIps: [...p.allowedIps],
      persistentKeepalive: p.persistentKeepaliveSec || undefined,
    }));
  }

  /** Changes the static key; every session is dropped (peers must learn the new public key). */
  setPrivateKey(k: Uint8Array): void {
    if (k.length !== 32) throw new Error('private key must be 32 bytes');
    this.privateKey = k.slice();
    this._publicKey = publicKeyOf(this.privateKey);
    this.checker.setPublicKey(this._publicKey);
    for (const [id, p] of this.peersByKey) {
      const ss = dh(this.privateKey, p.publicKey);
      if (!ss || equalBytes(p.publicKey, this._publicKey)) {
        this.removePeer(p.publicKey);
        this.log(`peer ${id.slice(0, 8)} removed: unusable with the new private key`);
        continue;
      }
      p.staticStatic = ss;
      this.dropSessions(p);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const p of this.peersByKey.values()) this.dropSessions(p);
    this.privateKey.fill(0);
    await Promise.allSettled([this.bind.close(), this.tun.close()]);
  }

  // ---- outgoing ----

  private onTunPackets(packets: Uint8Array[]): void {
    if (this.closed) return;
    const touched = new Set<Peer>();
    for (const pkt of packets) {
      const p = this.routes.lookupDestination(pkt);
      if (!p) continue;
      p.stage(pkt);
      touched.add(p);
    }
    for (const p of touched) this.sendStaged(p);
  }

  private usable(kp: Keypair | undefined, now: number): kp is Keypair {
    return kp !== undefined && now - kp.createdMs < this.t.rejectAfterTimeMs && kp.sendCounter < this.t.rejectAfterMessages;
  }

  private sendStaged(p: Peer): void {
    const now = Date.now();
    const kp = p.current;
    if (!this.usable(kp, now) || !p.endpoint) {
      this.initiateHandshake(p, false);
      return;
    }
    const out: Uint8Array[] = [];
    let bytes = 0;
    let data = false;
    let i = 0;
    for (; i < p.staged.length && kp.sendCounter < this.t.rejectAfterMessages; i++) {
      const pkt = p.staged[i];
      const d = this.seal(kp, pkt);
      out.push(d);
      bytes += d.length;
      if (pkt.length > 0) data = true;
    }
    p.staged = i === p.staged.length ? [] : p.staged.slice(i);
    if (out.length > 0) {
      this.bind.send(out, p.endpoint);
      p.txBytes += bytes;
      this.onAuthenticatedSent(p, now);
      if (data && p.newHandshakeAt === 0) p.newHandshakeAt = now + this.t.keepaliveTimeoutMs + this.t.rekeyTimeoutMs;
    }
    // §6.2: rekey after REKEY_AFTER_MESSAGES (either side) or REKEY_AFTER_TIME (the initiator).
    if (kp.sendCounter >= this.t.rekeyAfterMessages || (kp.isInitiator && now - kp.createdMs >= this.t.rekeyAfterTimeMs)) {
      this.initiateHandshake(p, false);
    }
  }

  /** Builds a transport message (§5.4.6): header, then the padded packet sealed in place. */
  private seal(kp: Keypair, pkt: Uint8Array): Uint8Array {
    const padded = Math.min(Math.ceil(pkt.length / PADDING_MULTIPLE) * PADDING_MULTIPLE, Math.max(this.tun.mtu, pkt.length));
    const d = Buffer.allocUnsafe(TRANSPORT_HEADER_SIZE + padded + AEAD_TAG_LEN);
    writeHeader(d, MESSAGE_TRANSPORT);
    writeU32(d, TRANSPORT_RECEIVER, kp.remoteIndex);
    const counter = kp.sendCounter++;
    writeCounter(d, TRANSPORT_COUNTER, counter);
    d.set(pkt, TRANSPORT_HEADER_SIZE);
    d.fill(0, TRANSPORT_HEADER_SIZE + pkt.length, TRANSPORT_HEADER_SIZE + padded);
    this.aead.seal(kp.sendKey, counter, d.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + padded), d, TRANSPORT_HEADER_SIZE);
    return d;
  }

  private sendKeepalive(p: Peer): void {
    if (p.staged.length === 0) p.stage(new Uint8Array(0));
    this.sendStaged(p);
  }

  /** Sends an initiation unless one went out less than REKEY_TIMEOUT ago (§6.4); `retry` comes from the retransmit timer. */
  private initiateHandshake(p: Peer, retry: boolean): void {
    const now = Date.now();
    if (!p.endpoint || this.closed) return;
    // An attempt is already in flight or scheduled: its retransmit timer (with jitter, so two
    // peers rekeying at once drift apart) takes it from here rather than replacing it now.
    if (!retry && p.retransmitAt !== 0) return;
    if (!retry && now - p.lastInitiationSentMs < this.t.rekeyTimeoutMs) {
      // Rate-limited: defer the handshake to the end of the REKEY_TIMEOUT rather than forget it.
      if (p.retransmitAt === 0) p.retransmitAt = p.lastInitiationSentMs + this.t.rekeyTimeoutMs;
      return;
    }
    if (!retry) p.handshakeAttempts = 0;
    if (p.initiation) this.indices.delete(p.initiation.localIndex);
    const index = this.newIndex({ peer: p });
    const init = createInitiation({ privateKey: this.privateKey, publicKey: this._publicKey }, p.publicKey, p.staticStatic, index, now);
    if (!init) {
      this.indices.delete(index);
      return;
    }
    p.initiation = init.state;
    p.cookies.addMacs(init.message);
    p.lastInitiationSentMs = now;
    p.retransmitAt = now + this.t.rekeyTimeoutMs + Math.random() * this.t.rekeyTimeoutJitterMaxMs;
    this.bind.send([init.message], p.endpoint);
    p.txBytes += init.message.length;
    this.onAuthenticatedSent(p, now);
  }

  private onAuthenticatedSent(p: Peer, now: number): void {
    p.sendKeepaliveAt = 0;
    p.needAnotherKeepalive = false;
    if (p.persistentKeepaliveSec > 0) p.persistentKeepaliveAt = now + p.persistentKeepaliveSec * 1000;
  }

  // ---- incoming ----

  private onDatagrams(batch: ReceivedDatagram[]): void {
    if (this.closed) return;
    const toTun: Uint8Array[] = [];
    const confirmed = new Set<Peer>();
    for (const { data, from } of batch) {
      try {
        switch (messageType(data)) {
          case MESSAGE_TRANSPORT:
            this.onTransport(data, from, toTun, confirmed);
            break;
          case MESSAGE_INITIATION:
            this.onInitiation(data, from);
            break;
          case MESSAGE_RESPONSE:
            this.onResponse(data, from);
            break;
          case MESSAGE_COOKIE_REPLY:
            this.onCookieReply(data);
            break;
          default:
            break;
        }
      } catch (err) {
        this.log(`dropped a datagram from ${from.toString()}: ${(err as Error).message}`);
      }
    }
    if (toTun.length > 0) this.tun.write(toTun);
    for (const p of confirmed) if (p.staged.length > 0) this.sendStaged(p);
  }

  private onTransport(d: Uint8Array, from: BindEndpoint, toTun: Uint8Array[], confirmed: Set<Peer>): void {
    const entry = this.indices.get(readU32(d, TRANSPORT_RECEIVER));
    const kp = entry?.keypair;
    if (!entry || !kp) return;
    const p = entry.peer;
    const hi = readU32(d, TRANSPORT_COUNTER + 4);
    if (hi >= COUNTER_HIGH_LIMIT) return;
    const counter = hi * 0x1_0000_0000 + readU32(d, TRANSPORT_COUNTER);
    const now = Date.now();
    if (counter >= this.t.rejectAfterMessages || now - kp.createdMs >= this.t.rejectAfterTimeMs) return;
    // Decrypt in place: the datagram buffer is ours from here on.
    const n = this.aead.open(kp.receiveKey, counter, d.subarray(TRANSPORT_HEADER_SIZE), d, TRANSPORT_HEADER_SIZE);
    if (n < 0 || !kp.replay.accept(counter)) return;
    kp.lastReceivedMs = now;
    if (kp === p.next) {
      this.retire(p.previous);
      p.next = undefined;
      if (!p.current || kp.generation > p.current.generation) {
        p.previous = p.current;
        p.current = kp;
        confirmed.add(p);
      } else {
        // Crossed handshakes: our own newer keypair is already current; keep this one for receiving.
        p.previous = kp;
      }
    }
    p.endpoint = from;
    p.rxBytes += d.length;
    p.newHandshakeAt = 0;
    if (p.persistentKeepaliveSec > 0) p.persistentKeepaliveAt = now + p.persistentKeepaliveSec * 1000;
    // §6.2: the initiator rekeys before the receiving side would hit REJECT_AFTER_TIME.
    if (
      kp === p.current &&
      kp.isInitiator &&
      now - kp.createdMs >= this.t.rejectAfterTimeMs - this.t.keepaliveTimeoutMs - this.t.rekeyTimeoutMs
    ) {
      this.initiateHandshake(p, false);
    }
    if (n === 0) return;
    if (p.sendKeepaliveAt === 0) p.sendKeepaliveAt = now + this.t.keepaliveTimeoutMs;
    else p.needAnotherKeepalive = true;
    const pkt = innerPacket(d.subarray(TRANSPORT_HEADER_SIZE, TRANSPORT_HEADER_SIZE + n));
    if (!pkt || this.routes.lookupSource(pkt) !== p) return;
    toTun.push(pkt);
  }

  private underLoad(): boolean {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.loadSecond) {
      this.loadSecond = second;
      this.handshakesThisSecond = 0;
    }
    if (++this.handshakesThisSecond > this.loadThreshold) this.underLoadUntil = now + UNDER_LOAD_AFTER_MS;
    return now < this.underLoadUntil;
  }

  /** mac1 always; mac2 when under load, answering with a cookie reply when it is missing (§5.3). */
  private admitHandshake(d: Uint8Array, from: BindEndpoint): boolean {
    if (!this.checker.checkMac1(d)) return false;
    if (!this.underLoad()) return true;
    const source = new TextEncoder().encode(from.toString());
    if (this.checker.checkMac2(d, source)) return true;
    this.bind.send([this.checker.createReply(d, source)], from);
    return false;
  }

  private onInitiation(d: Uint8Array, from: BindEndpoint): void {
    if (!this.admitHandshake(d, from)) return;
    const local = { privateKey: this.privateKey, publicKey: this._publicKey };
    const init = consumeInitiation(local, d, (s) => this.peersByKey.get(keyId(s))?.staticStatic);
    if (!init) return;
    const p = this.peersByKey.get(keyId(init.remoteStatic));
    if (!p) return;
    const now = Date.now();
    // Whitepaper §5.1/§5.4.2: a replayed initiation carries an old timestamp; floods come too fast.
    if (compareBytes(init.timestamp, p.lastTimestamp) <= 0) return;
    if (now - p.lastInitiationConsumedMs < this.t.handshakeInitiationRateMs) return;
    p.lastTimestamp = init.timestamp;
    p.lastInitiationConsumedMs = now;
    const entry: IndexEntry = { peer: p };
    const index = this.newIndex(entry);
    const resp = createResponse(init, p.presharedKey, index);
    if (!resp) {
      this.indices.delete(index);
      return;
    }
    entry.keypair = this.keypair(resp.keys.send, resp.keys.receive, false, now, index, init.remoteIndex);
    // Responder: the new keypair waits as `next` until the initiator proves it has it. Unlike
    // wireguard-go and Linux we keep `previous` until then: after crossed handshakes the peer may
    // still be sending under it, and it is dropped anyway when `next` is promoted.
    this.retire(p.next);
    p.next = entry.keypair;
    p.endpoint = from;
    p.lastHandshakeMs = now;
    p.zeroKeysAt = now + 3 * this.t.rejectAfterTimeMs;
    p.cookies.addMacs(resp.message);
    this.bind.send([resp.message], from);
    p.txBytes += resp.message.length;
    p.rxBytes += d.length;
    this.onAuthenticatedSent(p, now);
  }

  private onResponse(d: Uint8Array, from: BindEndpoint): void {
    if (!this.admitHandshake(d, from)) return;
    const entry = this.indices.get(readU32(d, RESP_RECEIVER));
    if (!entry || entry.keypair) return;
    const p = entry.peer;
    const state = p.initiation;
    if (!state || state.localIndex !== readU32(d, RESP_RECEIVER)) return;
    const res = consumeResponse({ privateKey: this.privateKey, publicKey: this._publicKey }, state, p.presharedKey, d);
    if (!res) return;
    const now = Date.now();
    p.initiation = undefined;
    entry.keypair = this.keypair(res.keys.send, res.keys.receive, true, now, state.localIndex, res.remoteIndex);
    // Initiator: the new keypair is current at once. As `previous` we keep the old keypair the
    // peer is still sending with: whichever of current/previous last carried data from it. An
    // unconfirmed `next` stays (the peer starts using it once it reads our response). This
    // differs from wireguard-go, which folds `next` into `previous` and drops `current`: when
    // both sides rekey at once (crossed handshakes) that loses the packets in flight.
    const keep = p.previous && p.current && p.previous.lastReceivedMs > p.current.lastReceivedMs ? p.previous : p.current;
    if (keep !== p.previous) this.retire(p.previous);
    if (keep !== p.current) this.retire(p.current);
    p.previous = keep;
    p.current = entry.keypair;
    p.endpoint = from;
    p.lastHandshakeMs = now;
    p.rxBytes += d.length;
    p.retransmitAt = 0;
    p.handshakeAttempts = 0;
    p.newHandshakeAt = 0;
    p.zeroKeysAt = now + 3 * this.t.rejectAfterTimeMs;
    // Confirm the session to the responder right away, with data if we have some.
    this.sendKeepalive(p);
  }

  private onCookieReply(d: Uint8Array): void {
    const entry = this.indices.get(readU32(d, 4));
    if (entry && entry.peer.cookies.consumeReply(d)) this.log('cookie reply accepted; the next initiation carries mac2');
  }

  // ---- timers (§6) ----

  private onTick(): void {
    const now = Date.now();
    const maxAttempts = Math.ceil(this.t.rekeyAttemptTimeMs / this.t.rekeyTimeoutMs);
    for (const p of this.peersByKey.values()) {
      if (p.retransmitAt && now >= p.retransmitAt) {
        p.retransmitAt = 0;
        if (++p.handshakeAttempts >= maxAttempts) {
          // §6.4: give up after REKEY_ATTEMPT_TIME; staged packets are dropped.
          this.log(`handshake with peer did not complete after ${p.handshakeAttempts} attempts`);
          p.staged = [];
          if (p.initiation) this.indices.delete(p.initiation.localIndex);
          p.initiation = undefined;
          if (p.zeroKeysAt === 0) p.zeroKeysAt = now + 3 * this.t.rejectAfterTimeMs;
        } else {
          this.initiateHandshake(p, true);
        }
      }
      if (p.sendKeepaliveAt && now >= p.sendKeepaliveAt) {
        p.sendKeepaliveAt = 0;
        const again = p.needAnotherKeepalive;
        this.sendKeepalive(p);
        if (again) p.sendKeepaliveAt = now + this.t.keepaliveTimeoutMs;
      }
      if (p.newHandshakeAt && now >= p.newHandshakeAt) {
        // §6.5: we sent data but heard nothing back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT.
        p.newHandshakeAt = 0;
        this.initiateHandshake(p, false);
      }
      if (p.persistentKeepaliveAt && now >= p.persistentKeepaliveAt) {
        p.persistentKeepaliveAt = 0;
        this.sendKeepalive(p);
      }
      if (p.zeroKeysAt && now >= p.zeroKeysAt) {
        // §6.3: after 3 * REJECT_AFTER_TIME without a new handshake, erase all key material.
        p.zeroKeysAt = 0;
        this.dropSessions(p);
      }
    }
  }

  // ---- bookkeeping ----

  private keypair(send: Uint8Array, receive: Uint8Array, initiator: boolean, now: number, local: number, remote: number): Keypair {
    const kp = new Keypair(this.aead.importKey(send), this.aead.importKey(receive), initiator, now, local, remote, ++this.generation);
    send.fill(0);
    receive.fill(0);
    return kp;
  }

  private newIndex(entry: IndexEntry): number {
    for (;;) {
      const i = readU32(randomBytes(4), 0);
      if (!this.indices.has(i)) {
        this.indices.set(i, entry);
        return i;
      }
    }
  }

  private retire(kp: Keypair | undefined): void {
    if (!kp) return;
    this.indices.delete(kp.localIndex);
    kp.sendKey.raw.fill(0);
    kp.receiveKey.raw.fill(0);
  }

  private dropSessions(p: Peer): void {
    for (const kp of [p.current, p.previous, p.next]) this.retire(kp);
    p.current = p.previous = p.next = undefined;
    if (p.initiation) this.indices.delete(p.initiation.localIndex);
    p.initiation = undefined;
    p.retransmitAt = p.sendKeepaliveAt = p.newHandshakeAt = p.zeroKeysAt = 0;
    p.lastInitiationSentMs = -Infinity;
  }
}

function keyId(k: Uint8Array): string {
  return Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('base64');
}

/**
 * The IP packet inside a decrypted payload, trimmed of WireGuard's padding using the IP
 * length field (RFC 791 §3.1 total length; RFC 8200 §3 payload length + 40-byte header).
 */
export function innerPacket(plain: Uint8Array): Uint8Array | undefined {
  const v = plain[0] >>> 4;
  if (v === 4 && plain.length >= 20) {
    const total = (plain[2] << 8) | plain[3];
    return total >= 20 && total <= plain.length ? plain.subarray(0, total) : undefined;
  }
  if (v === 6 && plain.length >= 40) {
    const total = 40 + ((plain[4] << 8) | plain[5]);
    return total <= plain.length ? plain.subarray(0, total) : undefined;
  }
  return undefined;
}
