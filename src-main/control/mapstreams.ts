/**
 * The coordination server's netmap sessions. Per node: what it has been told (peers, packet
 * filter, seq), its live stream while it is online, and a bounded history of its latest
 * deltas. A node that reconnects naming its session and the last seq it applied gets only the
 * deltas after that seq; when the history no longer reaches back that far, or the session was
 * dropped (offline longer than the resume window), it gets a full map.
 *
 * Cost of a change: an endpoint/online change of X touches only the sessions of X's peers; a
 * join, removal or tag change of X touches only the sessions the policy index names as
 * affected, each in O(changed nodes + its filter); only a policy change revisits every session.
 * A delta is serialised once and sealed per stream (each stream has its own box key).
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import type { PolicyIndex } from '../policy/index.js';
import type { DerpMap } from '../protocol/derpmap.js';
import type { Netmap, NodeInfo } from '../protocol/netmap.js';
import { sealJson } from './sealed.js';

export interface MapStreamsOptions {
  /** Deltas kept per node for resumption: at most this many... */
  historyFrames?: number;
  /** ...and at most this many bytes of serialised deltas. */
  historyBytes?: number;
  /** How long a session outlives its stream (a reconnect within it can resume). */
  resumeWindowMs?: number;
  keepaliveMs?: number;
  /** A stream whose unsent backlog grows past this is cut; the client reconnects and resumes. */
  maxBacklogBytes?: number;
}

export interface MapStreamsHost {
  index(): PolicyIndex;
  /** The node as peers see it; undefined once it is removed. */
  info(id: string): NodeInfo | undefined;
  derpMap(): DerpMap;
  /** A live stream ended and no newer one replaced it. */
  onOffline(id: string): void;
}

/** Where a reconnecting client left off: the session of its last full map and the last seq it applied. */
export interface Resume {
  session: string;
  seq: number;
}

interface Live {
  res: http.ServerResponse;
  shared: Uint8Array;
  keepalive: NodeJS.Timeout;
}

interface Session {
  id: string;
  seq: number;
  /** Peers this node has been told about. */
  peers: Set<string>;
  filterJson: string;
  /** Deltas sent since the last full map, oldest first, each under its seq. */
  history: { seq: number; json: string }[];
  historyBytes: number;
  live?: Live;
  drop?: NodeJS.Timeout;
}

const KEEPALIVE_JSON = '{"kind":"keepalive"}';

export class MapStreams {
  private readonly sessions = new Map<string, Session>();
  private readonly historyFrames: number;
  private readonly historyBytes: number;
  private readonly resumeWindowMs: number;
  private readonly keepaliveMs: number;
  private readonly maxBacklogBytes: number;
  private live = 0;
  /** Sealed bytes (with framing) and frames of netmaps and deltas written to streams since start (keepalives not counted). */
  bytesSent = 0;
  framesSent = 0;

  constructor(
    private readonly host: MapStreamsHost,
    o: MapStreamsOptions = {},
  ) {
    this.historyFrames = o.historyFrames ?? 64;
    this.historyBytes = o.historyBytes ?? 64 * 1024;
    this.resumeWindowMs = o.resumeWindowMs ?? 120_000;
    this.keepaliveMs = o.keepaliveMs ?? 25_000;
    this.maxBacklogBytes = o.maxBacklogBytes ?? 8 << 20;
  }

  online(id: string): boolean {
    return this.sessions.get(id)?.live !== undefined;
  }

  get onlineCount(): number {
    return this.live;
  }

  /** Serves `res` as node `id`'s stream (replacing an older one): the missed deltas when `resume` allows, else a full map. */
  attach(id: string, res: http.ServerResponse, shared: Uint8Array, resume?: Resume): 'full' | 'resumed' {
    let s = this.sessions.get(id);
    if (s?.live) this.detach(s);
    if (s?.drop) clearTimeout(s.drop);
    if (!s) {
      s = { id: randomBytes(8).toString('hex'), seq: 0, peers: new Set(), filterJson: '', history: [], historyBytes: 0 };
      this.sessions.set(id, s);
    }
    const live: Live = { res, shared, keepalive: setInterval(() => this.write(live, KEEPALIVE_JSON), this.keepaliveMs) };
    s.live = live;
    this.live++;
    res.on('close', () => this.closed(id, live));
    if (resume && resume.session === s.id && this.canResume(s, resume.seq)) {
      for (const f of s.history) if (f.seq > resume.seq) this.write(live, f.json);
      return 'resumed';
    }
    this.sendFull(id, s);
    return 'full';
  }

  /** Ends node `id`'s stream (e.g. its key expired); its session stays for the resume window. */
  end(id: string): void {
    this.sessions.get(id)?.live?.res.end();
  }

  /** The node is gone: end its stream without an offline notice and forget its session. */
  remove(id: string): void {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    if (s.drop) clearTimeout(s.drop);
    if (s.live) this.detach(s);
  }

  /** Endpoint, relay, online or key change of `id` that does not change who sees whom. */
  nodeChanged(id: string): void {
    const info = this.host.info(id);
    if (!info) return;
    const json = JSON.stringify(info);
    for (const p of this.host.index().peersOf(id)) {
      const s = this.sessions.get(p);
      if (!s?.peers.has(id)) continue;
      const seq = ++s.seq;
      this.emit(s, seq, `{"kind":"delta","delta":{"seq":${seq},"peersChanged":[${json}]}}`);
    }
    const own = this.sessions.get(id);
    if (own) {
      const seq = ++own.seq;
      this.emit(own, seq, `{"kind":"delta","delta":{"seq":${seq},"self":${json}}}`);
    }
  }

  /**
   * Nodes `ids` joined, left or changed identity (the index is already updated); `affected` are
   * the nodes the index reported as possibly seeing a difference (old and new peers).
   */
  topologyChanged(ids: Iterable<string>, affected: Iterable<string>): void {
    const index = this.host.index();
    const changed = new Map<string, { json?: string; peers: Set<string> }>();
    for (const id of ids) {
      const info = this.host.info(id);
      changed.set(id, { json: info && JSON.stringify(info), peers: info ? index.peersOf(id) : new Set() });
    }
    const targets = new Set(affected);
    for (const id of changed.keys()) targets.add(id);
    for (const sid of targets) {
      const s = this.sessions.get(sid);
      if (!s || !this.host.info(sid)) continue;
      const own = changed.get(sid);
      const d = own ? this.diff(s, own.peers) : { added: [] as string[], removed: [] as string[] };
      const updated: string[] = [];
      for (const [id, v] of changed) {
        if (id === sid) continue;
        const now = v.peers.has(sid);
        const was = s.peers.has(id);
        if (now && was) updated.push(v.json!);
        else if (!own && now) d.added.push(id);
        else if (!own && was) d.removed.push(id);
      }
      for (const id of d.added) s.peers.add(id);
      for (const id of d.removed) s.peers.delete(id);
      this.emitDiff(sid, s, d.added, updated, d.removed, own?.json);
    }
  }

  /** The policy changed: every session is re-diffed against the new index. */
  policyChanged(): void {
    const index = this.host.index();
    for (const [sid, s] of this.sessions) {
      if (!this.host.info(sid)) continue;
      const now = index.peersOf(sid);
      const d = this.diff(s, now);
      s.peers = now;
      this.emitDiff(sid, s, d.added, [], d.removed);
    }
  }

  close(): void {
    for (const s of this.sessions.values()) {
      if (s.drop) clearTimeout(s.drop);
      if (s.live) this.detach(s);
    }
    this.sessions.clear();
  }

  private diff(s: Session, now: Set<string>): { added: string[]; removed: string[] } {
    const added: string[] = [];
    const removed: string[] = [];
    for (const p of now) if (!s.peers.has(p)) added.push(p);
    for (const p of s.peers) if (!now.has(p)) removed.push(p);
    return { added, removed };
  }

  /** One delta with whatever changed for `sid` (nothing is sent when nothing did). */
  private emitDiff(sid: string, s: Session, added: string[], updatedJson: string[], removed: string[], selfJson?: string): void {
    const filterJson = JSON.stringify(this.host.index().filterFor(sid));
    const filterChanged = filterJson !== s.filterJson;
    if (!added.length && !updatedJson.length && !removed.length && !filterChanged && selfJson === undefined) return;
    s.filterJson = filterJson;
    const seq = ++s.seq;
    const parts = [`"seq":${seq}`];
    if (selfJson !== undefined) parts.push(`"self":${selfJson}`);
    if (added.length) parts.push(`"peersAdded":[${added.map((p) => JSON.stringify(this.host.info(p))).join(',')}]`);
    if (updatedJson.length) parts.push(`"peersChanged":[${updatedJson.join(',')}]`);
    if (removed.length) parts.push(`"peersRemoved":${JSON.stringify(removed)}`);
    if (filterChanged) parts.push(`"packetFilter":${filterJson}`);
    this.emit(s, seq, `{"kind":"delta","delta":{${parts.join(',')}}}`);
  }

  private sendFull(id: string, s: Session): void {
    const index = this.host.index();
    const filter = index.filterFor(id);
    s.peers = index.peersOf(id);
    s.filterJson = JSON.stringify(filter);
    s.history = [];
    s.historyBytes = 0;
    const netmap: Netmap = { seq: ++s.seq, self: this.host.info(id)!, peers: [...s.peers].map((p) => this.host.info(p)!), derpMap: this.host.derpMap(), packetFilter: filter };
    this.write(s.live!, JSON.stringify({ kind: 'full', netmap, session: s.id }));
  }

  private canResume(s: Session, seq: unknown): boolean {
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq > s.seq) return false;
    return seq === s.seq || (s.history.length > 0 && s.history[0].seq <= seq + 1);
  }

  private emit(s: Session, seq: number, json: string): void {
    s.history.push({ seq, json });
    s.historyBytes += json.length;
    while (s.history.length > this.historyFrames || s.historyBytes > this.historyBytes) s.historyBytes -= s.history.shift()!.json.length;
    if (s.live) this.write(s.live, json);
  }

  private write(live: Live, json: string): void {
    const res = live.res;
    if (res.destroyed || res.writableEnded) return;
    const { nonce, sealed } = sealJson(live.shared, json);
    const line = `{"nonce":"${nonce}","sealed":"${sealed}"}\n`;
    if (json !== KEEPALIVE_JSON) {
      this.bytesSent += line.length;
      this.framesSent++;
    }
    res.write(line);
    if (res.writableLength > this.maxBacklogBytes) res.destroy();
  }

  /** Ends a live stream without an offline notice (it is being replaced or the node is gone). */
  private detach(s: Session): void {
    const live = s.live!;
    s.live = undefined;
    this.live--;
    clearInterval(live.keepalive);
    live.res.end();
  }

  private closed(id: string, live: Live): void {
    clearInterval(live.keepalive);
    const s = this.sessions.get(id);
    if (!s || s.live !== live) return;
    s.live = undefined;
    this.live--;
    s.drop = setTimeout(() => {
      if (this.sessions.get(id) === s && !s.live) this.sessions.delete(id);
    }, this.resumeWindowMs);
    this.host.onOffline(id);
  }
}
