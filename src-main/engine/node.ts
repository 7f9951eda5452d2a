/**
 * A Pierce node: wires the coordination-server stream, MagicSock (UDP + relays + disco),
 * the WireGuard device, the packet filter and the TUN together, and answers the LocalAPI.
 * It never imports Electron: the same class runs as the headless daemon and under the
 * desktop shell's engine process.
 *
 * Lifecycle: `up` registers (pre-auth key, or an interactive login URL), opens the TUN
 * with the node's tailnet addresses, and keeps one netmap stream; every netmap is applied
 * to MagicSock (peers, relay map), the device (peers, allowed IPs) and the filter.
 * Candidates are re-gathered on a timer and whenever the interface list changes, and
 * published when they differ. `down` tears it all down but keeps the keys; a restarted
 * daemon whose last state was "up" rejoins by itself.
 */
import { hostname as osHostname, networkInterfaces } from 'node:os';
import { ControlClient, ControlError, type RegisterResult } from '../control/client.js';
import { MagicSock } from '../magicsock/magicsock.js';
import { discoverNat64Prefixes, formatNat64Prefix } from '../magicsock/nat64.js';
import { netcheck, type NetcheckReport } from '../magicsock/netcheck.js';
import { isUnusableIPv4 } from '../magicsock/portmap/addr.js';
import { Portmapper } from '../magicsock/portmap/portmapper.js';
import { encodeKey, parseKey } from '../protocol/keys.js';
import type { BackendState, PeerPath, PeerStatus, PingResponse, Status, UpRequest, UpResponse } from '../protocol/localapi.js';
import { LOCALAPI_VERSION } from '../protocol/localapi.js';
import type { Netmap, NodeInfo } from '../protocol/netmap.js';
import { Device } from '../wireguard/device.js';
import type { TunDevice } from '../wireguard/tun.js';
import { FilteredTun } from './filtered-tun.js';
import { LocalApiServer, HttpError } from './localapi-server.js';
import { loadOrCreateState, type NodeState, saveState } from './state.js';

/** WireGuard's customary port; 0 picks a free one. */
export const DEFAULT_PORT = 41641;
/**
 * The tailnet's IPv6 ULA space, routed into the TUN whole. IPv4 peers get a /32 route
 * each instead of 100.64.0.0/10: that is RFC 6598 shared space, which carrier-grade NATs
 * use too, and routing all of it into the tunnel would swallow traffic to them (such as
 * pongs to a peer seen from behind the same carrier).
 */
export const TAILNET_ULA = 'fd7a:7069:6572::/48';
const REGATHER_MS = 20_000;
const NETWORK_POLL_MS = 2_000;
const FIRST_NETMAP_WAIT_MS = 10_000;
/** How often the NAT's behaviour is re-measured (and after every network change). */
const NETCHECK_INTERVAL_MS = 120_000;

export interface TunRequest {
  name?: string;
  mtu?: number;
  addresses: string[];
  routes: string[];
}
export type TunFactory = (o: TunRequest) => Promise<TunDevice>;

export interface NodeOptions {
  stateDir: string;
  /** LocalAPI socket; none when omitted (tests drive the class directly). */
  socketPath?: string;
  tunName?: string;
  /** How the TUN is made: the OS device by default (native/), a fake in unit tests. */
  tunFactory?: TunFactory;
  port?: number;
  /** Ask the default gateway for a UPnP/NAT-PMP/PCP mapping (default on; tests outside netlab turn it off). */
  portmap?: boolean;
  log?: (msg: string) => void;
}

interface Session {
  client: ControlClient;
  sock: MagicSock;
  device: Device;
  tun: FilteredTun;
  self: NodeInfo;
  controlUrl: string;
  netmap?: Netmap;
  derpMapJson: string;
  /** node key text → JSON of the device config, so unchanged peers are left alone. */
  devicePeers: Map<string, string>;
  published: string;
  timers: NodeJS.Timeout[];
  interfaces: string;
  firstNetmap: Promise<void>;
  portmapper?: Portmapper;
  lastNetcheck?: NetcheckReport;
}

/** Parses an UpRequest from the LocalAPI (untrusted JSON) into a typed value. */
export function parseUpRequest(body: unknown): UpRequest {
  if (!body || typeof body !== 'object') throw new HttpError(400, 'up: expected a JSON object');
  const b = body as Record<string, unknown>;
  if (typeof b.controlUrl !== 'string') throw new HttpError(400, 'up: controlUrl is required');
  let url: URL;
  try {
    url = new URL(b.controlUrl);
  } catch {
    throw new HttpError(400, `up: controlUrl "${b.controlUrl}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new HttpError(400, 'up: controlUrl must be http:// or https://');
  if (b.authKey !== undefined && typeof b.authKey !== 'string') throw new HttpError(400, 'up: authKey must be a string');
  if (b.hostname !== undefined && (typeof b.hostname !== 'string' || !/^[A-Za-z0-9-]{1,63}$/.test(b.hostname)))
    throw new HttpError(400, 'up: hostname must be 1-63 letters, digits or dashes');
  const tags = b.advertiseTags ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || !/^tag:[A-Za-z0-9-]+$/.test(t))) throw new HttpError(400, 'up: advertiseTags must be like ["tag:server"]');
  return { controlUrl: url.toString().replace(/\/$/, ''), authKey: b.authKey as string | undefined, hostname: b.hostname as string | undefined, advertiseTags: tags as string[] };
}

/** No IPv4 address on any interface but loopback: an IPv6-only network, where NAT64 may help. */
const ipv6Only = () => !Object.values(networkInterfaces()).some((l) => (l ?? []).some((a) => a.family === 'IPv4' && !a.internal));

const interfaceFingerprint = () =>
  JSON.stringify(
    Object.entries(networkInterfaces())
      .map(([n, l]) => [n, (l ?? []).map((a) => a.address).sort()])
      .sort(),
  );

export class Node {
  private readonly state: NodeState;
  private session?: Session;
  private api?: LocalApiServer;
  private backendState: BackendState = 'NoState';
  private authUrl?: string;
  private lastError?: string;
  private pending?: Promise<UpResponse>;
  /** A control client waiting for an interactive login or approval. */
  private waiting?: ControlClient;
  private readonly log: (m: string) => void;
  private closed = false;

  private constructor(private readonly o: NodeOptions) {
    this.state = loadOrCreateState(o.stateDir);
    this.log = o.log ?? ((m) => process.stderr.write(`${new Date().toISOString()} ${m}\n`));
  }

  static async start(o: NodeOptions): Promise<Node> {
    const node = new Node(o);
    if (o.socketPath) node.api = await LocalApiServer.listen(o.socketPath, node.routes());
    const prefs = node.state.prefs;
    if (prefs?.wantRunning) {
      node.log(`rejoining ${prefs.controlUrl}`);
      node.up(prefs).catch((err: Error) => node.log(`rejoin failed: ${err.message}`));
    } else node.backendState = prefs ? 'Stopped' : 'NeedsLogin';
    return node;
  }

  get nodeKey(): string {
    return encodeKey('nodekey', this.state.node.publicKey);
  }

  private routes() {
    return {
      'GET /v1/status': async () => this.status(),
      'POST /v1/up': async (body: unknown) => this.up(parseUpRequest(body)),
      'POST /v1/down': async () => {
        await this.down();
        return this.status();
      },
      'POST /v1/ping': async (body: unknown) => {
        const peer = (body as { peer?: unknown } | undefined)?.peer;
        if (typeof peer !== 'string' || !peer) throw new HttpError(400, 'ping: peer (name, address or node key) is required');
        return this.ping(peer);
      },
      'GET /v1/netcheck': async () => this.netcheck(),
    };
  }

  /** Joins the tailnet at `req.controlUrl`. Concurrent calls share one attempt. */
  up(req: UpRequest): Promise<UpResponse> {
    if (this.closed) return Promise.reject(new Error('node is shutting down'));
    this.pending ??= this.doUp(req).finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async doUp(req: UpRequest): Promise<UpResponse> {
    if (this.session && this.session.controlUrl === req.controlUrl && !req.authKey) return { backendState: this.backendState };
    await this.down({ keepWanted: true });
    this.backendState = 'Starting';
    this.lastError = undefined;
    const client = new ControlClient(req.controlUrl, this.state.machine, this.log);
    let result: RegisterResult;
    try {
      result = await client.login({
        nodeKey: this.nodeKey,
        discoKey: encodeKey('discokey', this.state.disco.publicKey),
        hostname: req.hostname ?? osHostname().split('.')[0],
        os: process.platform,
        authKey: req.authKey,
        tags: req.advertiseTags,
      });
    } catch (err) {
      client.close();
      this.backendState = err instanceof ControlError && err.status === 401 ? 'NeedsLogin' : 'Stopped';
      this.lastError = (err as Error).message;
      throw err;
    }
    if ('authUrl' in result || result.pendingApproval) {
      // Interactive login (or admin approval): answer now with the URL; join once the server releases us.
      this.backendState = 'NeedsLogin';
      this.authUrl = 'authUrl' in result ? result.authUrl : undefined;
      if (!('authUrl' in result)) this.lastError = 'waiting for an admin to approve this node';
      this.waiting = client;
      client
        .waitForLogin(() => (this.lastError = 'waiting for an admin to approve this node'))
        .then(async (self) => {
          if (this.waiting !== client) return;
          this.waiting = undefined;
          this.authUrl = undefined;
          this.lastError = undefined;
          await this.joined(client, self, req);
        })
        .catch((err: Error) => {
          if (this.waiting !== client) return;
          this.waiting = undefined;
          client.close();
          this.authUrl = undefined;
          this.lastError = `login failed: ${err.message}`;
          this.backendState = 'NeedsLogin';
        });
      return { backendState: this.backendState, authUrl: this.authUrl };
    }
    await this.joined(client, result.node, req);
    return { backendState: this.backendState };
  }

  private async joined(client: ControlClient, self: NodeInfo, req: UpRequest): Promise<void> {
    this.state.prefs = { controlUrl: req.controlUrl, hostname: req.hostname, advertiseTags: req.advertiseTags, wantRunning: true };
    saveState(this.o.stateDir, this.state);
    try {
      await this.startSession(client, self, req.controlUrl);
    } catch (err) {
      this.backendState = 'Stopped';
      this.lastError = (err as Error).message;
      throw err;
    }
  }

  private async startSession(client: ControlClient, self: NodeInfo, controlUrl: string): Promise<void> {
    const addresses = self.addresses.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`));
    const sock = new MagicSock({
      nodePrivateKey: this.state.node.privateKey,
      discoPrivateKey: this.state.disco.privateKey,
      port: this.o.port ?? DEFAULT_PORT,
      excludeCidrs: [TAILNET_ULA, ...self.addresses.filter((a) => !a.includes(':')).map((a) => `${a}/32`)],
      onEndpointsChanged: () => {
        if (this.session?.sock === sock) void this.publish(this.session);
      },
      log: this.log,
    });
    if (ipv6Only()) {
      const [prefix] = await discoverNat64Prefixes();
      if (prefix) this.log(`IPv6-only network with NAT64 prefix ${formatNat64Prefix(prefix)}`);
      sock.setNat64(prefix);
    }
    const makeTun = this.o.tunFactory ?? (async (t: TunRequest) => (await import('../../native/index.js')).createTun(t));
    const raw = await makeTun({ name: this.o.tunName, addresses, routes: [TAILNET_ULA] });
    const tun = new FilteredTun(raw);
    const device = new Device({ privateKey: this.state.node.privateKey, tun, bind: sock, log: this.log });
    try {
      await device.up();
    } catch (err) {
      await device.close();
      throw err;
    }
    let gotFirst!: () => void;
    const s: Session = {
      client,
      sock,
      device,
      tun,
      self,
      controlUrl,
      derpMapJson: '',
      devicePeers: new Map(),
      published: '',
      timers: [],
      interfaces: interfaceFingerprint(),
      firstNetmap: new Promise<void>((r) => (gotFirst = r)),
    };
    this.session = s;
    client.streamMap(
      () => ({ nodeKey: this.nodeKey, endpoints: sock.localEndpoints(), homeRegion: sock.home }),
      (nm) => {
        this.applyNetmap(s, nm);
        gotFirst();
      },
      (err) => {
        this.log(`control: ${err.message}`);
        if (err instanceof ControlError && err.status === 401) {
          this.backendState = 'NeedsLogin';
          this.lastError = err.message;
        }
      },
    );
    s.timers.push(setInterval(() => void this.regather(s), REGATHER_MS));
    s.timers.push(setInterval(() => void this.checkNat(s), NETCHECK_INTERVAL_MS));
    if (this.o.portmap !== false) this.startPortmap(s);
    s.timers.push(
      setInterval(() => {
        const now = interfaceFingerprint();
        if (now === s.interfaces) return;
        s.interfaces = now;
        this.log('network change: re-gathering candidates');
        void this.regather(s);
        void this.checkNat(s);
        s.portmapper?.createMapping().catch(() => undefined);
      }, NETWORK_POLL_MS),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([s.firstNetmap, new Promise((r) => (timer = setTimeout(r, FIRST_NETMAP_WAIT_MS)))]);
    clearTimeout(timer);
    this.backendState = 'Running';
  }

  private applyNetmap(s: Session, nm: Netmap): void {
    if (this.session !== s) return;
    s.netmap = nm;
    s.self = nm.self;
    const derpMapJson = JSON.stringify(nm.derpMap);
    if (derpMapJson !== s.derpMapJson) {
      s.derpMapJson = derpMapJson;
      s.sock.setDerpMap(nm.derpMap);
      void this.regather(s);
      void this.checkNat(s);
    }
    s.sock.setPeers(
      nm.peers.map((p) => ({ nodeKey: parseKey('nodekey', p.nodeKey), discoKey: parseKey('discokey', p.discoKey), endpoints: p.endpoints, homeRegion: p.homeRegion })),
    );
    const keep = new Set<string>();
    for (const p of nm.peers) {
      keep.add(p.nodeKey);
      const allowedIps = p.addresses.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`));
      const json = JSON.stringify(allowedIps);
      if (s.devicePeers.get(p.nodeKey) === json) continue;
      s.devicePeers.set(p.nodeKey, json);
      s.device.setPeer({ publicKey: parseKey('nodekey', p.nodeKey), allowedIps, endpoint: p.nodeKey });
    }
    for (const k of s.devicePeers.keys()) {
      if (keep.has(k)) continue;
      s.devicePeers.delete(k);
      s.device.removePeer(parseKey('nodekey', k));
    }
    s.tun.setRules(nm.packetFilter);
    const routes = [TAILNET_ULA, ...nm.peers.flatMap((p) => p.addresses.filter((a) => !a.includes(':')).map((a) => `${a}/32`))];
    s.tun.setRoutes(routes).catch((err: Error) => this.log(`routes: ${err.message}`));
  }

  /** netcheck: whether our NAT maps per destination decides our side in birthday probing. */
  private async checkNat(s: Session): Promise<void> {
    const derpMap = s.netmap?.derpMap;
    if (!derpMap) return;
    try {
      const r = await netcheck({ derpMap: s.sock.reachableDerpMap(derpMap), previousHome: s.sock.home, portmap: false, nat64: false, hairpin: false });
      if (this.session !== s) return;
      s.lastNetcheck = r;
      s.sock.setHardNat(r.mappingVariesByDestIP === true);
    } catch (err) {
      this.log(`netcheck failed: ${(err as Error).message}`);
    }
  }

  /** A UPnP/NAT-PMP/PCP mapping of our port on the gateway is one more candidate, renewed and deleted on down. */
  private startPortmap(s: Session): void {
    const port = s.sock.port;
    if (port === undefined) return;
    const pm = new Portmapper({
      localPort: port,
      onChange: (m) => {
        if (this.session !== s) return;
        // A private or CGNAT-space mapping still reaches peers behind the same outer NAT
        // (two homes behind one carrier); elsewhere its pings just go unanswered.
        s.sock.setExtraEndpoints(m && !isUnusableIPv4(m.external.address) ? [`${m.external.address}:${m.external.port}`] : []);
        if (m) this.log(`port mapping via ${m.protocol}: ${m.external.address}:${m.external.port} (lease ${m.lifetimeSec} s${m.suspect ? '; not a public address: only peers behind the same outer NAT can use it' : ''})`);
        void this.regather(s);
      },
    });
    s.portmapper = pm;
    pm.createMapping().catch((err: Error) => this.log(`no port mapping: ${err.message}`));
  }

  /** STUN again and publish the candidates if they changed. */
  private async regather(s: Session): Promise<void> {
    await s.sock.refreshStun();
    await this.publish(s);
  }

  /** Publishes the current candidates and home relay if they differ from what the server has. */
  private async publish(s: Session): Promise<void> {
    if (this.session !== s) return;
    const endpoints = s.sock.localEndpoints();
    const home = s.sock.home;
    const key = JSON.stringify([endpoints, home]);
    if (key === s.published) return;
    try {
      await s.client.update({ nodeKey: this.nodeKey, endpoints, homeRegion: home });
      s.published = key;
      this.log(`published candidates ${endpoints.join(' ')}`);
    } catch (err) {
      this.log(`publishing candidates failed: ${(err as Error).message}`);
    }
  }

  async down(o: { keepWanted?: boolean } = {}): Promise<void> {
    this.waiting?.close();
    this.waiting = undefined;
    this.authUrl = undefined;
    const s = this.session;
    this.session = undefined;
    if (!o.keepWanted && this.state.prefs?.wantRunning) {
      this.state.prefs = { ...this.state.prefs, wantRunning: false };
      saveState(this.o.stateDir, this.state);
    }
    if (!s) return;
    for (const t of s.timers) clearInterval(t);
    s.client.close();
    await s.portmapper?.close();
    await s.device.close();
    this.backendState = 'Stopped';
  }

  status(): Status {
    const s = this.session;
    const health: string[] = [];
    if (this.lastError) health.push(this.lastError);
    const base: Status = { version: LOCALAPI_VERSION, backendState: this.backendState, authUrl: this.authUrl, controlUrl: this.state.prefs?.controlUrl, peers: [], filterDrops: s?.tun.dropped ?? 0, health };
    if (!s) return base;
    const self = s.self;
    base.self = { name: self.name, nodeKey: self.nodeKey, user: self.user, tags: self.tags, addresses: self.addresses, online: true, keyExpiry: self.keyExpiry, homeRegion: s.sock.home };
    const wg = new Map(s.device.peers().map((p) => [encodeKey('nodekey', p.publicKey), p]));
    const derpMap = s.netmap?.derpMap;
    base.peers = (s.netmap?.peers ?? []).map((p): PeerStatus => {
      const w = wg.get(p.nodeKey);
      const mp = s.sock.pathOf(p.nodeKey);
      const path: PeerPath = mp.kind === 'relay' ? { ...mp, regionCode: derpMap?.regions[mp.region]?.regionCode } : mp;
      return {
        name: p.name,
        nodeKey: p.nodeKey,
        user: p.user,
        tags: p.tags,
        addresses: p.addresses,
        online: p.online,
        os: p.os,
        path,
        lastHandshake: w?.lastHandshakeMs ? new Date(w.lastHandshakeMs).toISOString() : undefined,
        rxBytes: w?.rxBytes ?? 0,
        txBytes: w?.txBytes ?? 0,
      };
    });
    return base;
  }

  /** Finds a peer by name, tailnet address or node key. */
  private findPeer(s: Session, q: string): NodeInfo {
    const p = s.netmap?.peers.find((x) => x.name === q || x.nodeKey === q || x.addresses.includes(q));
    if (!p) throw new HttpError(404, `no peer "${q}" (try a name from \`pierce status\`)`);
    return p;
  }

  async ping(peer: string): Promise<PingResponse> {
    const s = this.session;
    if (!s) throw new HttpError(409, 'not connected: run `pierce up` first');
    const p = this.findPeer(s, peer);
    const steps = await s.sock.ping(p.nodeKey);
    return { peer: p.name, steps, ...(steps.length ? {} : { error: `no answer from ${p.name} (offline, or blocked by the policy?)` }) };
  }

  async netcheck(): Promise<NetcheckReport> {
    const map = this.session?.netmap?.derpMap;
    if (!map) throw new HttpError(409, 'no relay map yet: run `pierce up` first, or pass --derp-map');
    return netcheck({ derpMap: this.session!.sock.reachableDerpMap(map), previousHome: this.session?.sock.home });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pending?.catch(() => undefined);
    await this.down({ keepWanted: true });
    await this.api?.close();
  }
}
