/**
 * The node's side of the control protocol (see sealed.ts): register, keep one netmap
 * stream open (reconnecting with back-off and jitter, resuming from the last applied seq so
 * the server sends only the deltas missed; a gap in seqs forces a full map), and publish
 * endpoint changes. The engine uses only this.
 */
import http from 'node:http';
import https from 'node:https';
import type { KeyPair } from '../protocol/keys.js';
import { applyDelta, type MapMessage, type Netmap, type NodeInfo } from '../protocol/netmap.js';
import { boxKey, open, sealRequest } from './sealed.js';

export interface RegisterRequest {
  nodeKey: string;
  discoKey: string;
  hostname: string;
  os?: string;
  authKey?: string;
  tags?: string[];
  oldNodeKey?: string;
}

export interface MapRequest {
  nodeKey: string;
  endpoints?: string[];
  homeRegion?: number;
}

export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The server needs an interactive login: show the user `authUrl`, then call `waitForLogin()`. */
export class LoginRequiredError extends ControlError {
  constructor(readonly authUrl: string) {
    super(401, `interactive login required: open ${authUrl}`);
  }
}

/** `/machine/register`: registered (perhaps awaiting approval), or a login URL for the user's browser. */
export type RegisterResult = { node: NodeInfo; pendingApproval?: boolean } | { authUrl: string };

const BACKOFF_MIN_MS = 250;
const REQUEST_TIMEOUT_MS = 15_000;
/** Above the server's long-poll hold (25 s), so a held `/machine/wait` is not cut short. */
const WAIT_TIMEOUT_MS = 60_000;
const BACKOFF_MAX_MS = 15_000;
/** A stream line longer than this is refused (a full map of 10,000 peers is about 7 MiB). */
const MAX_LINE = 64 << 20;

export class ControlClient {
  private serverKey?: Uint8Array;
  private closed = false;
  private current?: http.ClientRequest;
  private retry?: NodeJS.Timeout;
  private shared?: Uint8Array;
  /** The server's name for what this client was told; with `netmap.seq` it lets a reconnect resume. */
  private mapSession?: string;
  private readonly abort = new AbortController();
  netmap?: Netmap;

  constructor(
    readonly serverUrl: string,
    private readonly machine: KeyPair,
    private readonly log: (m: string) => void = () => {},
  ) {}

  private request(method: string, path: string, body?: string, timeout = REQUEST_TIMEOUT_MS): Promise<{ status: number; body: string }> {
    const url = new URL(path, this.serverUrl);
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers: body ? { 'content-type': 'application/json' } : {}, timeout, signal: this.abort.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`control ${path}: timed out`)));
      req.on('error', (err) => reject(new Error(`cannot reach the coordination server at ${this.serverUrl}: ${err.message}`, { cause: err })));
      req.end(body);
    });
  }

  private async key(): Promise<Uint8Array> {
    if (this.serverKey) return this.serverKey;
    const r = await this.request('GET', '/key');
    const hex = (JSON.parse(r.body) as { publicKey?: string }).publicKey;
    if (r.status !== 200 || !hex || !/^[0-9a-f]{64}$/.test(hex)) throw new ControlError(r.status, `${this.serverUrl} is not a Pierce coordination server`);
    this.serverKey = new Uint8Array(Buffer.from(hex, 'hex'));
    return this.serverKey;
  }

  /** The box key with the server, computed once (the X25519 step is the costly part). */
  private async sharedKey(): Promise<Uint8Array> {
    this.shared ??= boxKey(await this.key(), this.machine.privateKey);
    return this.shared;
  }

  private async call<T>(path: string, body: object, timeout?: number): Promise<T> {
    const { shared, request } = sealRequest(await this.key(), this.machine, body, await this.sharedKey());
    const r = await this.request('POST', path, JSON.stringify(request), timeout);
    const parsed = JSON.parse(r.body) as { error?: string };
    if (r.status !== 200) throw new ControlError(r.status, parsed.error ?? `HTTP ${r.status}`);
    return open<T>(shared, parsed);
  }

  /** Registers with an auth key, or (without one, on a server with SSO) returns the URL the user must log in at. */
  async login(req: RegisterRequest): Promise<RegisterResult> {
    return this.call<RegisterResult>('/machine/register', req);
  }

  /** As `login`, for callers that need a usable node: throws LoginRequiredError or a 403 while approval is pending. */
  async register(req: RegisterRequest): Promise<NodeInfo> {
    const r = await this.login(req);
    if ('authUrl' in r) throw new LoginRequiredError(r.authUrl);
    if (r.pendingApproval) throw new ControlError(403, `node ${r.node.id} awaits approval by an admin`);
    return r.node;
  }

  /**
   * After `login` returned an authUrl: waits until the user logged in and the node is
   * authorized. `onPendingApproval` runs once if an admin must approve the node first.
   * Rejects with the server's reason when the login fails, is denied or times out.
   */
  async waitForLogin(onPendingApproval?: (node: NodeInfo) => void): Promise<NodeInfo> {
    let told = false;
    for (;;) {
      const r = await this.call<{ waiting: 'login' } | { node: NodeInfo; pendingApproval?: boolean }>('/machine/wait', {}, WAIT_TIMEOUT_MS);
      if ('node' in r && !r.pendingApproval) return r.node;
      if ('node' in r && !told) {
        told = true;
        onPendingApproval?.(r.node);
      }
    }
  }

  async update(req: MapRequest): Promise<void> {
    await this.call('/machine/update', req);
  }

  /** Keeps a netmap stream open until close(); `onNetmap` gets every new netmap (full or patched). */
  streamMap(req: () => MapRequest, onNetmap: (nm: Netmap) => void, onError: (err: Error) => void = () => {}): void {
    let attempt = 0;
    const connect = async () => {
      if (this.closed) return;
      try {
        const resume = this.mapSession && this.netmap ? { resume: { session: this.mapSession, seq: this.netmap.seq } } : {};
        const { shared, request } = sealRequest(await this.key(), this.machine, { ...req(), ...resume }, await this.sharedKey());
        const url = new URL('/machine/map', this.serverUrl);
        const mod = url.protocol === 'https:' ? https : http;
        await new Promise<void>((resolve, reject) => {
          // The signal also covers a close() that lands during the awaits above.
          const r = mod.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, signal: this.abort.signal }, (res) => {
            if (res.statusCode !== 200) {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => reject(new ControlError(res.statusCode ?? 0, (JSON.parse(Buffer.concat(chunks).toString() || '{}') as { error?: string }).error ?? `HTTP ${res.statusCode}`)));
              return;
            }
            attempt = 0;
            let buf = '';
            res.on('data', (c: Buffer) => {
              buf += c.toString('utf8');
              try {
                for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
                  const line = buf.slice(0, nl);
                  buf = buf.slice(nl + 1);
                  if (this.applyFrame(open<MapMessage>(shared, JSON.parse(line)))) onNetmap(this.netmap!);
                }
                if (buf.length > MAX_LINE) throw new Error(`netmap stream line over ${MAX_LINE} bytes`);
              } catch (err) {
                res.destroy(err as Error);
              }
            });
            res.on('end', () => resolve());
            res.on('error', reject);
          });
          r.on('error', reject);
          this.current = r;
          r.end(JSON.stringify(request));
        });
      } catch (err) {
        if (!this.closed) onError(err as Error);
        if (err instanceof ControlError && err.status === 401) return; // needs a new login: stop
      }
      if (this.closed) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt++) * (0.5 + Math.random() / 2);
      this.log(`control: stream ended, reconnecting in ${delay.toFixed(0)} ms`);
      this.retry = setTimeout(() => void connect(), delay);
    };
    void connect();
  }

  /** Applies one stream message; true when the netmap changed. Throws on a seq gap (the reconnect then asks for a full map). */
  private applyFrame(m: MapMessage): boolean {
    if (m.kind === 'full') {
      this.netmap = m.netmap;
      this.mapSession = m.session;
      return true;
    }
    if (m.kind !== 'delta') return false;
    if (!this.netmap || m.delta.seq !== this.netmap.seq + 1) {
      this.mapSession = undefined;
      throw new Error(`netmap delta ${m.delta.seq} does not follow ${this.netmap?.seq ?? 'no map'}; reconnecting for a full map`);
    }
    this.netmap = applyDelta(this.netmap, m.delta);
    return true;
  }

  close(): void {
    this.closed = true;
    this.abort.abort();
    if (this.retry) clearTimeout(this.retry);
    this.current?.destroy();
  }
}
