/**
 * MagicSock: the WireGuard device's transport (a `Bind`) that finds direct paths.
 *
 * One UDP socket per address family carries WireGuard, STUN and disco; a DERP region
 * client carries the same through relays. WireGuard addresses peers by node key
 * (`PeerEndpoint`), and MagicSock decides per datagram where it goes:
 * - with a direct path that answered a ping within TRUST_UDP_ADDR_MS: straight over UDP;
 * - otherwise through the peer's home relay at once (so the first packet never waits),
 *   and discovery starts: ping every candidate of the peer over UDP, and send it a
 *   call-me-maybe through the relay listing our candidates, so it pings us back at the
 *   same moment and both NATs open (simultaneous open);
 * - pongs measure latency; the best candidate wins (path.ts); heartbeats keep the NAT
 *   mapping alive and the path trusted; when pongs stop, trust lapses and traffic falls
 *   back to the relay with no gap, the next send rediscovers, and we re-STUN at once in
 *   case it was our own public address that moved.
 * Received WireGuard datagrams are attributed to the peer whose direct path or relay
 * key they came from, so WireGuard's own roaming never bypasses this choice.
 */
import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { DerpMap } from '../protocol/derpmap.js';
import { cidrContains, parseCidr, parseIp } from '../protocol/ip.js';
import { encodeKey, publicKeyOf } from '../protocol/keys.js';
import { boxBeforeNm } from '../protocol/naclbox.js';
import { RegionClient } from '../derp/region-client.js';
import { bindingRequest, MAGIC_COOKIE, parseBindingResponse } from '../derp/stun.js';
import type { Bind, BindEndpoint, ReceivedDatagram } from '../wireguard/bind.js';
import { type DiscoMessage, DiscoType, discoSender, isDiscoPacket, joinEndpoint, newTxId, openDisco, sealDisco, splitEndpoint } from './disco.js';
import { BirthdayProber, HardSide } from './hardnat.js';
import { mapEndpointsToNat64, type Nat64Prefix, nat64DerpMap } from './nat64.js';
import { betterPath, type Candidate, DISCOVERY_INTERVAL_MS, HEARTBEAT_MS, isTrusted } from './path.js';

export type PeerPath = { kind: 'direct'; endpoint: string; latencyMs: number } | { kind: 'relay'; region: number; latencyMs: number | null } | { kind: 'none' };

export interface MagicPeer {
  nodeKey: Uint8Array;
  discoKey: Uint8Array;
  /** Candidate endpoints from the coordination server ("ip:port", "[v6]:port"). */
  endpoints: string[];
  homeRegion?: number;
}

export interface MagicSockOptions {
  nodePrivateKey: Uint8Array;
  discoPrivateKey: Uint8Array;
  port?: number;
  /** Bind only this address (tests); default all interfaces. */
  bindAddress?: string;
  derpMap?: DerpMap;
  homeRegion?: number;
  /** Extra candidates to advertise (manually configured endpoints). */
  staticEndpoints?: string[];
  /**
   * Prefixes that are never candidates, ours or a peer's: the tailnet's own addresses.
   * A "direct path" to a tunnel address would run WireGuard inside its own tunnel.
   */
  excludeCidrs?: string[];
  /** Birthday probing budgets (hardnat.ts defaults: 100 probes/s, 2048 probes, 30 s; 256 sockets). */
  hardNat?: { ratePerSec?: number; maxProbes?: number; maxTimeMs?: number; sockets?: number };
  /** Our STUN-mapped addresses changed (e.g. the NAT was renumbered): publish the candidates again. */
  onEndpointsChanged?: () => void;
  log?: (msg: string) => void;
}

/** A peer as WireGuard sees it: identified by its node key, never by an address. */
export class PeerEndpoint implements BindEndpoint {
  constructor(readonly id: string) {}
  toString(): string {
    return this.id;
  }
}

/** A datagram from an address no peer has claimed yet (e.g. a first handshake). */
class AddrEndpoint implements BindEndpoint {
  constructor(readonly addr: string) {}
  toString(): string {
    return this.addr;
  }
}

interface PendingPing {
  peer: PeerState;
  endpoint: string | 'relay';
  sentAt: number;
  resolve?: (latencyMs: number) => void;
}

interface PeerState {
  id: string;
  nodeKey: Uint8Array;
  discoKey: Uint8Array;
  discoShared: Uint8Array;
  endpoint: PeerEndpoint;
  candidates: Set<string>;
  homeRegion?: number;
  best?: Candidate;
  lastDiscovery: number;
  lastSend: number;
  relayLatencyMs: number | null;
  /** `lastPong` of the lost direct path we already re-STUNed for. */
  lossHandled?: number;
  /** Birthday probing with this peer: we are the hard side (extra sockets) or the easy side (prober). */
  hardSide?: HardSide;
  prober?: BirthdayProber;
  hardAt: number;
}

const STUN_INTERVAL_MS = 20_000;
/**
 * A lost direct path may mean our own public address moved, which the interface list
 * cannot show (the NAT in front was renumbered or rebooted): re-STUN at once rather than
 * at the next STUN_INTERVAL_MS, but at most this often.
 */
const RESTUN_AFTER_LOSS_MS = 5_000;
const ACTIVE_MS = 45_000;
/** Discovery for a peer's new candidates may run before DISCOVERY_INTERVAL_MS is up, but not more often than this. */
const NEW_CANDIDATE_DISCOVERY_MS = 1_000;
const PING_RETRY_MS = 250;
const RELAY_CONNECT_WAIT_MS = 3_000;
const SOCKET_BUFFER_BYTES = 7 << 20;
/** How often a hard-NAT node retries birthday probing with a peer that has no direct path. */
const HARD_NAT_RETRY_MS = 60_000;
/** RFC 1918 / RFC 6598 / loopback / link-local: never a peer's public mapping. */
const NOT_PUBLIC_V4 = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16'].map((c) => parseCidr(c));

export class MagicSock implements Bind {
  private sock4?: Socket;
  private sock6?: Socket;
  private relays?: RegionClient;
  private onReceive: (d: ReceivedDatagram[]) => void = () => {};
  private readonly peers = new Map<string, PeerState>();
  private readonly byDisco = new Map<string, PeerState>();
  private readonly byAddr = new Map<string, PeerState>();
  private readonly pings = new Map<string, PendingPing>();
  private readonly stunTx = new Map<string, (addr: string) => void>();
  private readonly discoPublic: Uint8Array;
  readonly nodePublic: Uint8Array;
  private stunAddrs: string[] = [];
  private lastLossStun = 0;
  private timers: NodeJS.Timeout[] = [];
  private derpMap?: DerpMap;
  private homeRegion?: number;
  private closed = false;
  private readonly log: (m: string) => void;
  private readonly excluded;
  /** Our NAT maps per destination (netcheck's mappingVariesByDestIP): we play the hard side. */
  private selfHard = false;
  private nat64?: Nat64Prefix;
  private extraEndpoints: string[] = [];
  /** Endpoints reached through an adopted birthday socket rather than the main one. */
  private readonly viaSocket = new Map<string, Socket>();

  constructor(private readonly o: MagicSockOptions) {
    this.excluded = (o.excludeCidrs ?? []).map((c) => parseCidr(c));
    this.discoPublic = publicKeyOf(o.discoPrivateKey);
    this.nodePublic = publicKeyOf(o.nodePrivateKey);
    this.log = o.log ?? (() => {});
    this.derpMap = o.derpMap;
    this.homeRegion = o.homeRegion;
  }

  get port(): number | undefined {
    return this.sock4?.address().port;
  }

  get discoPublicKey(): Uint8Array {
    return this.discoPublic;
  }

  async open(onReceive: (d: ReceivedDatagram[]) => void): Promise<void> {
    this.onReceive = onReceive;
    this.sock4 = await this.bindSocket('udp4', this.o.port ?? 0, this.o.bindAddress);
    try {
      this.sock6 = await this.bindSocket('udp6', this.port!, this.o.bindAddress ? undefined : '::');
    } catch {
      this.sock6 = undefined; // no IPv6 here, or the port is taken on v6: IPv4 only
    }
    if (this.derpMap) await this.startRelays();
    this.timers.push(setInterval(() => this.heartbeat(), HEARTBEAT_MS));
    this.timers.push(setInterval(() => void this.refreshStun(), STUN_INTERVAL_MS));
    for (const t of this.timers) t.unref();
    await this.refreshStun();
  }

  private bindSocket(type: 'udp4' | 'udp6', port: number, address?: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = createSocket({ type, ipv6Only: type === 'udp6' });
      s.once('error', reject);
      s.bind({ port, address }, () => {
        s.off('error', reject);
        // Bursts of WireGuard datagrams overflow the default ~208 KiB buffers (each datagram
        // costs its skb truesize, not its length); ask for more (capped by net.core.*mem_max).
        try {
          s.setRecvBufferSize(SOCKET_BUFFER_BYTES);
          s.setSendBufferSize(SOCKET_BUFFER_BYTES);
        } catch {
          // keep the defaults
        }
        s.on('error', (e) => this.log(`magicsock: ${type} socket error: ${e.message}`));
        s.on('message', (msg, rinfo) => this.onUdp(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), joinEndpoint(rinfo.address, rinfo.port)));
        resolve(s);
      });
    });
  }

  /** Connects the home relay; waits for it (bounded) so the first packet has a path. */
  private async startRelays(): Promise<void> {
    if (!this.derpMap) return;
    const home = this.homeRegion ?? Number(Object.keys(this.derpMap.regions)[0]);
    this.relays = new RegionClient({ derpMap: this.reachableDerpMap(this.derpMap), privateKey: this.o.nodePrivateKey, homeRegionId: home, log: this.log });
    this.homeRegion = home;
    this.relays.onPacket((region, src, data) => this.onRelay(region, src, data));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.relays.ensure(home), new Promise((r) => (timer = setTimeout(r, RELAY_CONNECT_WAIT_MS).unref()))]);
    clearTimeout(timer);
  }

  /** Replaces the relay map (from the netmap) and the home region (from netcheck). */
  setDerpMap(map: DerpMap, homeRegion?: number): void {
    this.derpMap = map;
    if (homeRegion !== undefined) this.homeRegion = homeRegion;
    if (!this.sock4) return;
    if (!this.relays) void this.startRelays();
    else if (homeRegion !== undefined) this.relays.setHome(homeRegion);
  }

  get home(): number | undefined {
    return this.homeRegion;
  }

  /** The relay map as this network can reach it: on an IPv6-only network, through NAT64. */
  reachableDerpMap(map: DerpMap): DerpMap {
    if (!this.nat64) return map;
    const m = nat64DerpMap(this.nat64, map);
    for (const r of Object.values(m.regions)) r.nodes = r.nodes.map((n) => (n.ipv6 ? { ...n, ipv4: undefined } : n));
    return m;
  }

  /**
   * An IPv6-only network with NAT64 (RFC 6146/7050): relays, STUN servers and IPv4
   * candidates of peers are reached through the prefix. Set before the relay map.
   */
  setNat64(prefix: Nat64Prefix | undefined): void {
    this.nat64 = prefix;
    for (const st of this.peers.values()) this.addCandidates(st, [...st.candidates]);
  }

  /** Extra candidates of ours, e.g. a port mapping (UPnP/NAT-PMP/PCP) on the gateway. */
  setExtraEndpoints(endpoints: string[]): void {
    this.extraEndpoints = endpoints;
  }

  /**
   * netcheck found that our NAT maps per destination: with peers that have no direct path,
   * open the birthday sockets and ask them (through the relay) to probe our address.
   */
  setHardNat(hard: boolean): void {
    if (hard === this.selfHard) return;
    this.selfHard = hard;
    this.log(`magicsock: this node is behind a ${hard ? 'hard (endpoint-dependent)' : 'endpoint-independent'} NAT`);
    if (!hard) return;
    const now = Date.now();
    for (const st of this.peers.values()) if (now - st.lastSend < ACTIVE_MS && !isTrusted(st.best, now)) this.discover(st, now);
  }

  /** Returns whether any candidate is new. */
  private addCandidates(st: PeerState, endpoints: string[]): boolean {
    const list = this.nat64 ? [...endpoints, ...mapEndpointsToNat64(this.nat64, endpoints)] : endpoints;
    const before = st.candidates.size;
    for (const ep of list) if (this.usable(ep)) st.candidates.add(ep);
    return st.candidates.size > before;
  }

  /** Sets the peers from the netmap; peers not listed are forgotten. */
  setPeers(list: MagicPeer[]): void {
    const keep = new Set<string>();
    for (const p of list) {
      const id = encodeKey('nodekey', p.nodeKey);
      keep.add(id);
      let st = this.peers.get(id);
      if (!st || Buffer.compare(st.discoKey, p.discoKey) !== 0) {
        if (st) this.forget(st);
        st = {
          id,
          nodeKey: p.nodeKey,
          discoKey: p.discoKey,
          discoShared: boxBeforeNm(p.discoKey, this.o.discoPrivateKey),
          endpoint: new PeerEndpoint(id),
          candidates: new Set(),
          lastDiscovery: 0,
          lastSend: 0,
          relayLatencyMs: null,
          hardAt: 0,
        };
        this.peers.set(id, st);
        this.byDisco.set(Buffer.from(p.discoKey).toString('hex'), st);
      }
      st.homeRegion = p.homeRegion;
      // A peer in use that just published a new candidate (say, a fresh port mapping) is tried at once.
      const now = Date.now();
      if (this.addCandidates(st, p.endpoints) && st.lastSend && now - st.lastSend <= ACTIVE_MS && !isTrusted(st.best, now) && now - st.lastDiscovery >= NEW_CANDIDATE_DISCOVERY_MS) this.discover(st, now);
    }
    for (const [id, st] of this.peers) if (!keep.has(id)) this.forget(st);
  }

  private forget(st: PeerState): void {
    st.hardSide?.close();
    st.prober?.close();
    this.peers.delete(st.id);
    this.byDisco.delete(Buffer.from(st.discoKey).toString('hex'));
    for (const [addr, p] of this.byAddr) if (p === st) this.byAddr.delete(addr);
  }

  parseEndpoint(text: string): BindEndpoint {
    const st = this.peers.get(text);
    if (st) return st.endpoint;
    splitEndpoint(text);
    return new AddrEndpoint(text);
  }

  send(datagrams: Uint8Array[], to: BindEndpoint): void {
    if (this.closed) return;
    if (to instanceof AddrEndpoint) {
      for (const d of datagrams) this.sendUdp(to.addr, d);
      return;
    }
    const st = this.peers.get(to.toString());
    if (!st) return;
    const now = Date.now();
    st.lastSend = now;
    if (isTrusted(st.best, now)) {
      for (const d of datagrams) this.sendUdp(st.best.endpoint, d);
      return;
    }
    for (const d of datagrams) this.sendRelay(st, d);
    if (now - st.lastDiscovery >= DISCOVERY_INTERVAL_MS) this.discover(st, now);
  }

  /** Pings every candidate and asks the peer (through the relay) to ping ours: the simultaneous open. */
  private discover(st: PeerState, now: number): void {
    st.lastDiscovery = now;
    for (const ep of st.candidates) this.sendPing(st, ep);
    const mine = this.localEndpoints();
    if (mine.length) this.sendDisco(st, { type: DiscoType.CallMeMaybe, endpoints: mine }, 'relay');
    this.sendPing(st, 'relay');
    if (this.selfHard && !st.hardSide && now - st.hardAt >= HARD_NAT_RETRY_MS) void this.startHardSide(st, now);
  }

  /** The peer's public IPv4 candidates: where our birthday sockets aim. */
  private publicV4Candidates(st: PeerState): { ip: string; port: number }[] {
    return [...st.candidates].flatMap((ep) => {
      const { host, port } = splitEndpoint(ep);
      const ip = parseIp(host);
      return ip?.length === 4 && !NOT_PUBLIC_V4.some((c) => cidrContains(c, ip)) ? [{ ip: host, port }] : [];
    });
  }

  /**
   * Hard side of birthday probing (hardnat.ts): extra sockets each send a sealed ping to
   * the peer's public mapping, opening one mapping apiece on our NAT; the peer, told
   * through the relay, probes random ports of our address until one hits.
   */
  private async startHardSide(st: PeerState, now: number): Promise<void> {
    st.hardAt = now;
    const own = this.stunAddrs.map((a) => splitEndpoint(a).host).find((h) => !h.includes(':'));
    const target = this.publicV4Candidates(st)[0];
    if (!own || !target) return;
    this.sendDisco(st, { type: DiscoType.HardNat, endpoint: `${own}:0` }, 'relay');
    const peerEp = joinEndpoint(target.ip, target.port);
    let side: HardSide;
    try {
      side = await HardSide.open({
        peer: target,
        sockets: this.o.hardNat?.sockets,
        lifetimeMs: (this.o.hardNat?.maxTimeMs ?? 30_000) + 5000,
        probe: () => this.registeredPing(st, peerEp),
        onPacket: (data, from, via) => {
          if (!isDiscoPacket(data) || !openDisco(data, st.discoShared)) return;
          const ep = joinEndpoint(from.ip, from.port);
          side.answered(via);
          const sock = side.adopt();
          if (sock && !this.closed) {
            this.viaSocket.set(ep, sock);
            sock.on('message', (msg, rinfo) => this.onUdp(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), joinEndpoint(rinfo.address, rinfo.port)));
          } else sock?.close();
          this.onUdp(new Uint8Array(data.buffer, data.byteOffset, data.length), ep);
        },
      });
    } catch (err) {
      this.log(`magicsock: birthday sockets: ${(err as Error).message}`);
      return;
    }
    if (this.closed || this.peers.get(st.id) !== st) return side.close();
    st.hardSide = side;
    this.log(`magicsock: ${st.id.slice(0, 16)}… hard NAT: ${side.ports.length} birthday sockets toward ${peerEp}`);
    void side.result.then((r) => {
      if (st.hardSide === side) st.hardSide = undefined;
      this.log(`magicsock: ${st.id.slice(0, 16)}… hard side ${r.success ? `answered on local port ${r.port}` : `gave up (${r.reason})`} after ${r.probesSent} probes, ${r.elapsedMs.toFixed(0)} ms`);
    });
  }

  /** Easy side: the peer's NAT maps per destination; probe random ports of its address. */
  private startProber(st: PeerState, ip: string): void {
    if (st.prober || this.selfHard || isTrusted(st.best, Date.now()) || !this.sock4) return;
    const sock = this.sock4;
    const known = [...st.candidates].map((e) => splitEndpoint(e)).filter((e) => e.host === ip).map((e) => e.port);
    const prober = new BirthdayProber({
      target: ip,
      send: (d, host, port) => sock.send(d, port, host),
      probe: () => this.registeredPing(st, `birthday:${ip}`),
      ratePerSec: this.o.hardNat?.ratePerSec,
      maxProbes: this.o.hardNat?.maxProbes,
      maxTimeMs: this.o.hardNat?.maxTimeMs,
      skipPorts: known,
    });
    st.prober = prober;
    this.log(`magicsock: ${st.id.slice(0, 16)}… peer behind a hard NAT: birthday probing ${ip}`);
    void prober.result.then((r) => {
      if (st.prober === prober) st.prober = undefined;
      this.log(`magicsock: ${st.id.slice(0, 16)}… birthday probing ${r.success ? `hit port ${r.port}` : `gave up (${r.reason})`} after ${r.probesSent} probes, ${r.elapsedMs.toFixed(0)} ms`);
    });
  }

  /** A sealed ping whose pong is expected from `endpoint` ("birthday:IP" = any port of IP). */
  private registeredPing(st: PeerState, endpoint: string): Uint8Array {
    const txId = newTxId();
    this.pings.set(Buffer.from(txId).toString('hex'), { peer: st, endpoint, sentAt: performance.now() });
    if (this.pings.size > 4096) this.pings.delete(this.pings.keys().next().value!);
    return sealDisco({ type: DiscoType.Ping, txId, nodeKey: this.nodePublic }, this.discoPublic, st.discoShared);
  }

  private sendPing(st: PeerState, endpoint: string, resolve?: (ms: number) => void): void {
    const txId = newTxId();
    this.pings.set(Buffer.from(txId).toString('hex'), { peer: st, endpoint, sentAt: performance.now(), resolve });
    if (this.pings.size > 4096) this.pings.delete(this.pings.keys().next().value!);
    this.sendDisco(st, { type: DiscoType.Ping, txId, nodeKey: this.nodePublic }, endpoint);
  }

  private sendDisco(st: PeerState, m: DiscoMessage, via: string | 'relay'): void {
    const pkt = sealDisco(m, this.discoPublic, st.discoShared);
    if (via === 'relay') this.sendRelay(st, pkt);
    else this.sendUdp(via, pkt);
  }

  private sendUdp(endpoint: string, data: Uint8Array): void {
    let host: string;
    let port: number;
    try {
      ({ host, port } = splitEndpoint(endpoint));
    } catch {
      return;
    }
    const sock = this.viaSocket.get(endpoint) ?? (host.includes(':') ? this.sock6 : this.sock4);
    sock?.send(data, port, host);
  }

  private sendRelay(st: PeerState, data: Uint8Array): void {
    const region = st.homeRegion ?? this.homeRegion;
    if (this.relays && region !== undefined) this.relays.send(region, st.nodeKey, data);
  }

  private heartbeat(): void {
    const now = Date.now();
    let lost = false;
    for (const st of this.peers.values()) {
      if (now - st.lastSend > ACTIVE_MS) continue;
      if (st.best) this.sendPing(st, st.best.endpoint);
      const lastPong = st.best?.lastPong;
      if (lastPong !== undefined && !isTrusted(st.best, now) && st.lossHandled !== lastPong) {
        st.lossHandled = lastPong;
        lost = true;
      }
      if (!isTrusted(st.best, now) && now - st.lastDiscovery >= DISCOVERY_INTERVAL_MS) this.discover(st, now);
    }
    for (const [tx, p] of this.pings) if (performance.now() - p.sentAt > 10_000) this.pings.delete(tx);
    if (lost) void this.restunAfterLoss();
  }

  /** See RESTUN_AFTER_LOSS_MS. When our address moved, peers still without a path hear of it through the relay at once. */
  private async restunAfterLoss(): Promise<void> {
    if (Date.now() - this.lastLossStun < RESTUN_AFTER_LOSS_MS) return;
    this.lastLossStun = Date.now();
    const before = this.stunAddrs;
    const after = await this.refreshStun(undefined, 'a direct path was lost');
    if (this.closed || after === before) return;
    const now = Date.now();
    for (const st of this.peers.values()) if (now - st.lastSend <= ACTIVE_MS && !isTrusted(st.best, now)) this.discover(st, now);
  }

  private onUdp(data: Uint8Array, from: string): void {
    if (data.length >= 20 && (data[0] & 0xc0) === 0 && ((data[4] << 24) | (data[5] << 16) | (data[6] << 8) | data[7]) >>> 0 === MAGIC_COOKIE) return this.onStun(data);
    if (isDiscoPacket(data)) return this.onDisco(data, from);
    const st = this.byAddr.get(from);
    this.onReceive([{ data, from: st ? st.endpoint : new AddrEndpoint(from) }]);
  }

  private onRelay(_region: number, src: Uint8Array, data: Uint8Array): void {
    if (isDiscoPacket(data)) return this.onDisco(data, 'relay');
    const st = this.peers.get(encodeKey('nodekey', src));
    if (st) this.onReceive([{ data, from: st.endpoint }]);
  }

  private onDisco(pkt: Uint8Array, from: string | 'relay'): void {
    const st = this.byDisco.get(Buffer.from(discoSender(pkt)).toString('hex'));
    if (!st) return; // not a peer of ours: ignore without answering
    const m = openDisco(pkt, st.discoShared);
    if (!m) return;
    switch (m.type) {
      case DiscoType.Ping:
        if (Buffer.compare(m.nodeKey, st.nodeKey) !== 0 || (from !== 'relay' && !this.usable(from))) return;
        if (from !== 'relay') {
          st.candidates.add(from);
          this.byAddr.set(from, st);
        }
        this.sendDisco(st, { type: DiscoType.Pong, txId: m.txId, src: from === 'relay' ? '0.0.0.0:0' : from }, from);
        // Their ping got through, so our NAT now lets this address in: ping back at once
        // instead of waiting for the next discovery round.
        if (from !== 'relay' && !isTrusted(st.best, Date.now())) this.sendPing(st, from);
        return;
      case DiscoType.Pong: {
        const key = Buffer.from(m.txId).toString('hex');
        const p = this.pings.get(key);
        const birthday = p?.endpoint.startsWith('birthday:') && from !== 'relay' && splitEndpoint(from).host === p.endpoint.slice('birthday:'.length);
        if (!p || p.peer !== st || (!birthday && ((p.endpoint === 'relay') !== (from === 'relay') || (from !== 'relay' && from !== p.endpoint)))) return;
        this.pings.delete(key);
        if (birthday) {
          st.prober?.answered(splitEndpoint(from).port);
          st.candidates.add(from);
        }
        const latencyMs = performance.now() - p.sentAt;
        p.resolve?.(latencyMs);
        if (from === 'relay') {
          st.relayLatencyMs = latencyMs;
          return;
        }
        this.byAddr.set(from, st);
        const c: Candidate = { endpoint: from, latencyMs, lastPong: Date.now() };
        if (betterPath(c, st.best, c.lastPong)) {
          if (st.best?.endpoint !== from) this.log(`magicsock: ${st.id.slice(0, 16)}… direct path ${from} (${latencyMs.toFixed(1)} ms)`);
          st.best = c;
        }
        return;
      }
      case DiscoType.CallMeMaybe:
        this.addCandidates(st, m.endpoints);
        for (const ep of m.endpoints) if (this.usable(ep)) this.sendPing(st, ep);
        return;
      case DiscoType.HardNat: {
        if (from !== 'relay') return; // only ever sent through the relay
        const { host } = splitEndpoint(m.endpoint);
        const ip = parseIp(host);
        if (ip?.length === 4 && !NOT_PUBLIC_V4.some((c) => cidrContains(c, ip))) this.startProber(st, host);
        return;
      }
      default: {
        const never: never = m;
        void never;
      }
    }
  }

  /** False for endpoints inside an excluded prefix (see MagicSockOptions.excludeCidrs) or unparsable. */
  private usable(endpoint: string): boolean {
    let host: string;
    try {
      ({ host } = splitEndpoint(endpoint));
    } catch {
      return false;
    }
    const ip = parseIp(host);
    return !!ip && !this.excluded.some((c) => cidrContains(c, ip));
  }

  /** Our candidates: interface addresses and STUN-mapped addresses, with our port. */
  localEndpoints(): string[] {
    const port = this.port;
    if (port === undefined) return [];
    const out = new Set<string>([...(this.o.staticEndpoints ?? []), ...this.extraEndpoints]);
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) {
        if (a.internal) continue;
        if (a.family === 'IPv6' && (a.address.startsWith('fe80') || !this.sock6)) continue;
        if (this.o.bindAddress && a.address !== this.o.bindAddress) continue;
        out.add(joinEndpoint(a.address, a.family === 'IPv6' ? this.sock6!.address().port : port));
      }
    for (const s of this.stunAddrs) out.add(s);
    return [...out].filter((ep) => this.usable(ep));
  }

  /** Asks every STUN server in the relay map for our public address, over our own socket. */
  async refreshStun(timeoutMs = 1500, why = 'a STUN refresh'): Promise<string[]> {
    if (!this.derpMap || !this.sock4) return this.stunAddrs;
    const servers: string[] = [];
    for (const r of Object.values(this.reachableDerpMap(this.derpMap).regions))
      for (const n of r.nodes) {
        if (n.stunPort <= 0) continue;
        if (n.ipv4 || !n.ipv6) servers.push(joinEndpoint(n.ipv4 ?? n.hostName, n.stunPort));
        else if (this.sock6) servers.push(joinEndpoint(n.ipv6, n.stunPort));
      }
    const results = await Promise.all(servers.map((s) => this.stunOnce(s, timeoutMs).catch(() => undefined)));
    const found = [...new Set(results.filter((r): r is string => !!r))];
    // No answer at all is a STUN outage, not a new address: keep what we knew; only an answer that differs is news.
    if (found.length === 0 || [...found].sort().join(' ') === [...this.stunAddrs].sort().join(' ')) return this.stunAddrs;
    if (this.stunAddrs.length) this.log(`magicsock: our public address moved: ${this.stunAddrs.join(' ')} → ${found.join(' ')} (${why})`);
    this.stunAddrs = found;
    this.o.onEndpointsChanged?.();
    return found;
  }

  private stunOnce(server: string, timeoutMs: number): Promise<string> {
    const txId = newTxId();
    const key = Buffer.from(txId).toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stunTx.delete(key);
        reject(new Error(`no STUN answer from ${server}`));
      }, timeoutMs);
      timer.unref();
      this.stunTx.set(key, (addr) => {
        clearTimeout(timer);
        resolve(addr);
      });
      this.sendUdp(server, bindingRequest(txId));
    });
  }

  private onStun(data: Uint8Array): void {
    try {
      const r = parseBindingResponse(data);
      const key = Buffer.from(r.txId).toString('hex');
      const done = this.stunTx.get(key);
      this.stunTx.delete(key);
      done?.(joinEndpoint(r.ip, r.port));
    } catch {
      // not a response to us, or malformed: ignore
    }
  }

  /**
   * Disco ping through the relay, then direct: how `pierce ping` shows each step. The
   * direct phase re-pings every candidate each PING_RETRY_MS (the first pings may only
   * open our NAT; the peer's call-me-maybe pings open theirs) until one answers.
   */
  async ping(nodeKeyText: string, timeoutMs = 3000): Promise<{ via: 'relay' | 'direct'; endpoint?: string; region?: number; latencyMs: number }[]> {
    const st = this.peers.get(nodeKeyText);
    if (!st) throw new Error(`no peer ${nodeKeyText}`);
    const steps: { via: 'relay' | 'direct'; endpoint?: string; region?: number; latencyMs: number }[] = [];
    const relayMs = await new Promise<number | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), timeoutMs);
      t.unref();
      this.sendPing(st, 'relay', (ms) => {
        clearTimeout(t);
        resolve(ms);
      });
    });
    if (relayMs !== undefined) steps.push({ via: 'relay', region: st.homeRegion ?? this.homeRegion, latencyMs: relayMs });
    st.lastSend = Date.now();
    this.discover(st, Date.now());
    const direct = await new Promise<{ endpoint: string; latencyMs: number } | undefined>((resolve) => {
      let done = false;
      const finish = (v: { endpoint: string; latencyMs: number } | undefined) => {
        if (done) return;
        done = true;
        clearInterval(round);
        clearTimeout(timer);
        resolve(v);
      };
      const pingAll = () => {
        for (const ep of st.candidates) this.sendPing(st, ep, (ms) => finish({ endpoint: ep, latencyMs: ms }));
      };
      const round = setInterval(pingAll, PING_RETRY_MS);
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      round.unref();
      timer.unref();
      pingAll();
    });
    if (direct) steps.push({ via: 'direct', ...direct });
    return steps;
  }

  pathOf(nodeKeyText: string): PeerPath {
    const st = this.peers.get(nodeKeyText);
    if (!st) return { kind: 'none' };
    if (isTrusted(st.best, Date.now())) return { kind: 'direct', endpoint: st.best.endpoint, latencyMs: st.best.latencyMs };
    const region = st.homeRegion ?? this.homeRegion;
    return region === undefined ? { kind: 'none' } : { kind: 'relay', region, latencyMs: st.relayLatencyMs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const st of this.peers.values()) {
      st.hardSide?.close();
      st.prober?.close();
    }
    for (const sock of new Set(this.viaSocket.values())) sock.close();
    await this.relays?.close();
    await Promise.all([this.sock4, this.sock6].map((s) => (s ? new Promise<void>((r) => s.close(() => r())) : undefined)));
  }
}
