/**
 * Interactive login (SSO) through OpenID Connect for the coordination server.
 *
 * A machine that registers without an auth key gets an auth URL on this server
 * (`/login/<id>`, single use, expires). Visiting it starts the authorization-code flow
 * (OIDC Core 1.0 §3.1) with PKCE S256 (RFC 7636), a fresh `state` (RFC 6749 §10.12) and
 * `nonce` (OIDC Core §3.1.2.1), and binds the browser to the login with a cookie, so the
 * callback is matched to the login the browser started and not to whatever `state` it
 * carries. `/oidc/callback` lets openid-client exchange the code and validate the
 * response (state, PKCE, ID token signature, issuer, audience, expiry, nonce), maps the
 * verified `email` claim to the Pierce user and hands the login to the server, which
 * registers the machine. The node long-polls `/machine/wait` (see `wait`) meanwhile.
 * Pending logins live in memory: a restart loses them and the node simply logs in again.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import * as oidc from 'openid-client';
import type { NodeInfo } from '../protocol/netmap.js';

export interface OidcOptions {
  /** Issuer identifier; https, or http on a loopback address (development and tests). */
  issuer: string;
  clientId: string;
  clientSecret?: string;
  /** Base URL browsers reach this server at (default: the server's own URL); the redirect URI is `<base>/oidc/callback`. */
  externalUrl?: string;
  /** How long a login link and the login it starts stay valid (default 10 min). */
  loginTimeoutMs?: number;
}

/** What the machine asked for when it registered; the server applies it once the login succeeds. */
export interface LoginRequest {
  machineKey: string;
  nodeKey: string;
  discoKey: string;
  hostname: string;
  os?: string;
  tags: string[];
}

/** Answer of `/machine/wait`: still logging in, registered but awaiting approval, or done. */
export type WaitResult = { waiting: 'login' } | { node: NodeInfo; pendingApproval?: true };

export class LoginError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const DEFAULT_LOGIN_TIMEOUT_MS = 10 * 60_000;
/** How long a failed login is kept so a node that polls late still learns why. */
const FAILED_KEEP_MS = 60_000;
/** Each pending login costs memory and anyone can make machine keys: bound them. */
const MAX_PENDING_LOGINS = 10_000;
const COOKIE = 'pierce_login';
const CALLBACK_PATH = '/oidc/callback';
const LOGIN_ID = /^\/login\/([A-Za-z0-9_-]{22})$/;
const EMAIL = /^[^@\s]{1,64}@[^@\s]{1,190}$/;

/** new → redirected (browser sent to the provider) → exchanging (callback running) → gone (done) or failed. */
type Phase = 'new' | 'redirected' | 'exchanging' | 'failed';

interface Login {
  id: string;
  request: LoginRequest;
  phase: Phase;
  expires: number;
  timer: NodeJS.Timeout;
  state?: string;
  nonce?: string;
  verifier?: string;
  error?: LoginError;
}

export interface LoginHooks {
  /** The server's URL (used when `externalUrl` is not set). */
  baseUrl: string;
  /** Registers the machine for `user`; throws to refuse (the message reaches the node and the browser). */
  complete(request: LoginRequest, user: string): { pendingApproval: boolean };
  /** The machine's node as the wait call reports it, if it exists. */
  nodeStatus(machineKey: string): { node: NodeInfo; pendingApproval: boolean } | undefined;
  log(msg: string): void;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Validates the options before anything starts; `insecure` = plain-HTTP issuer on loopback (development and tests). */
export function checkOidcOptions(o: OidcOptions): { insecure: boolean } {
  let issuer: URL;
  try {
    issuer = new URL(o.issuer);
  } catch {
    throw new Error(`OIDC issuer is not a URL: ${o.issuer}`);
  }
  const insecure = issuer.protocol === 'http:' && isLoopback(issuer.hostname);
  if (issuer.protocol !== 'https:' && !insecure) throw new Error(`OIDC issuer must be https (or http on loopback), got ${o.issuer}`);
  if (!o.clientId) throw new Error('OIDC client id is required');
  if (o.externalUrl !== undefined && !/^https?:\/\/[^/]+/.test(o.externalUrl)) throw new Error(`OIDC external URL must be http(s)://host[:port], got ${o.externalUrl}`);
  return { insecure };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: http.ServerResponse, status: number, title: string, text: string, headers: Record<string, string> = {}): void {
  const body = `<!doctype html><meta charset="utf-8"><title>Pierce: ${escapeHtml(title)}</title><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p>\n`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').slice(0, 8192).split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Why the login failed, in words a user can act on. */
function describe(err: unknown): string {
  if (err instanceof oidc.AuthorizationResponseError) return `the identity provider refused the login: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`;
  if (err instanceof oidc.ResponseBodyError) return `the identity provider rejected the code exchange: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`;
  // openid-client's own message is generic; the cause names the failed check (state, nonce, PKCE, ...).
  const detail = err instanceof oidc.ClientError && err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `login response rejected: ${err instanceof Error ? err.message : String(err)}${detail}`;
}

export class OidcLogins {
  private readonly byId = new Map<string, Login>();
  private readonly byMachine = new Map<string, Login>();
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly timeoutMs: number;
  private readonly base: string;
  private readonly insecure: boolean;
  private config?: Promise<oidc.Configuration>;
  private closed = false;

  constructor(
    private readonly o: OidcOptions,
    private readonly hooks: LoginHooks,
  ) {
    this.insecure = checkOidcOptions(o).insecure;
    this.timeoutMs = o.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS;
    this.base = (o.externalUrl ?? hooks.baseUrl).replace(/\/+$/, '');
    hooks.log(`oidc: interactive login through ${o.issuer}; register the redirect URI ${this.redirectUri} with it`);
  }

  get redirectUri(): string {
    return `${this.base}${CALLBACK_PATH}`;
  }

  /** Discovery runs on first use and again after a failure, so the server starts while the provider is down. */
  private configuration(): Promise<oidc.Configuration> {
    this.config ??= oidc
      .discovery(new URL(this.o.issuer), this.o.clientId, this.o.clientSecret, undefined, { execute: this.insecure ? [oidc.allowInsecureRequests] : [], timeout: 10 })
      .catch((err: unknown) => {
        this.config = undefined;
        throw err;
      });
    return this.config;
  }

  /** Starts (or restarts) the login of one machine; returns the URL for the user's browser. */
  start(request: LoginRequest): string {
    const old = this.byMachine.get(request.machineKey);
    if (old) {
      // A callback of the old login that is mid-exchange must not register the machine afterwards.
      old.phase = 'failed';
      old.error = new LoginError(409, 'this login was replaced by a newer login of the same device');
      this.drop(old);
    }
    if (this.byId.size >= MAX_PENDING_LOGINS) throw new LoginError(429, 'too many logins in progress; try again later');
    const id = randomBytes(16).toString('base64url');
    const login: Login = { id, request, phase: 'new', expires: Date.now() + this.timeoutMs, timer: setTimeout(() => this.expire(login), this.timeoutMs) };
    this.byId.set(id, login);
    this.byMachine.set(request.machineKey, login);
    this.wake(request.machineKey);
    return `${this.base}/login/${id}`;
  }

  private expire(login: Login): void {
    if (login.phase === 'failed') return this.drop(login);
    this.fail(login, new LoginError(410, `login timed out after ${Math.round(this.timeoutMs / 1000)} s: register again for a new login link`));
  }

  private fail(login: Login, error: LoginError): void {
    login.phase = 'failed';
    login.error = error;
    clearTimeout(login.timer);
    login.timer = setTimeout(() => this.drop(login), FAILED_KEEP_MS);
    this.hooks.log(`oidc: login ${login.id} failed: ${error.message}`);
    this.wake(login.request.machineKey);
  }

  private drop(login: Login | undefined): void {
    if (!login) return;
    clearTimeout(login.timer);
    this.byId.delete(login.id);
    if (this.byMachine.get(login.request.machineKey) === login) this.byMachine.delete(login.request.machineKey);
  }

  /** Tells the machine's waiting `/machine/wait` calls to look again (login settled, node approved). */
  wake(machineKey: string): void {
    const set = this.wakers.get(machineKey);
    this.wakers.delete(machineKey);
    for (const f of set ?? []) f();
  }

  private status(machineKey: string): WaitResult {
    const login = this.byMachine.get(machineKey);
    if (login?.phase === 'failed') throw login.error!;
    if (login) return { waiting: 'login' };
    const s = this.hooks.nodeStatus(machineKey);
    if (!s) throw new LoginError(401, 'no login in progress for this machine: register first');
    return s.pendingApproval ? { node: s.node, pendingApproval: true } : { node: s.node };
  }

  /**
   * Long-poll: answers at once when the node is authorized, otherwise when the status
   * changes (login done or failed, approval granted) or after `maxMs` with the status then.
   */
  async wait(machineKey: string, maxMs: number): Promise<WaitResult> {
    const kind = (r: WaitResult) => ('waiting' in r ? 'login' : r.pendingApproval ? 'approval' : 'done');
    const first = this.status(machineKey);
    const deadline = Date.now() + maxMs;
    for (let now = first; ; now = this.status(machineKey)) {
      if (kind(now) === 'done' || kind(now) !== kind(first) || Date.now() >= deadline || this.closed) return now;
      await this.changed(machineKey, deadline - Date.now());
    }
  }

  private changed(machineKey: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.wakers.get(machineKey);
      if (!set) this.wakers.set(machineKey, (set = new Set()));
      const waker = set;
      const done = () => {
        clearTimeout(timer);
        waker.delete(done);
        if (!waker.size && this.wakers.get(machineKey) === waker) this.wakers.delete(machineKey);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waker.add(done);
    });
  }

  /** Serves `/login/<id>` and `/oidc/callback`; false for any other path. */
  async handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<boolean> {
    if (req.method !== 'GET') return false;
    const m = LOGIN_ID.exec(url.pathname);
    if (m) await this.redirect(res, m[1]);
    else if (url.pathname === CALLBACK_PATH) await this.callback(req, res, url);
    else if (url.pathname.startsWith('/login/')) page(res, 404, 'Unknown login link', 'This is not a Pierce login link.');
    else return false;
    return true;
  }

  private async redirect(res: http.ServerResponse, id: string): Promise<void> {
    const login = this.byId.get(id);
    if (!login) return page(res, 404, 'Unknown login link', 'This login link does not exist or has expired. Run the login on the device again.');
    if (login.phase === 'failed') return page(res, 410, 'Login link no longer valid', login.error!.message);
    if (login.phase !== 'new') return page(res, 410, 'Login link already used', 'Each login link works once. Run the login on the device again for a new one.');
    let config: oidc.Configuration;
    try {
      config = await this.configuration();
    } catch (err) {
      this.hooks.log(`oidc: discovery of ${this.o.issuer} failed: ${(err as Error).message}`);
      return page(res, 502, 'Identity provider unreachable', `The coordination server cannot reach ${this.o.issuer}. Try this link again later.`);
    }
    if (this.byId.get(id) !== login || login.phase !== 'new') return page(res, 410, 'Login link already used', 'Each login link works once.');
    login.phase = 'redirected';
    login.state = oidc.randomState();
    login.nonce = oidc.randomNonce();
    login.verifier = oidc.randomPKCECodeVerifier();
    const target = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(login.verifier),
      code_challenge_method: 'S256',
      state: login.state,
      nonce: login.nonce,
    });
    const maxAge = Math.max(1, Math.ceil((login.expires - Date.now()) / 1000));
    // SameSite=Lax: the cookie still rides on the provider's top-level redirect back to us.
    const cookie = `${COOKIE}=${id}; Path=${CALLBACK_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${this.base.startsWith('https:') ? '; Secure' : ''}`;
    res.writeHead(302, { location: target.href, 'set-cookie': cookie, 'cache-control': 'no-store', 'content-length': 0 });
    res.end();
  }

  private async callback(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const clear = { 'set-cookie': `${COOKIE}=; Path=${CALLBACK_PATH}; Max-Age=0; HttpOnly; SameSite=Lax` };
    const id = cookieValue(req.headers.cookie, COOKIE);
    const login = id === undefined ? undefined : this.byId.get(id);
    // A login never sent to the provider (phase "new") was not started from this browser.
    if (!login || login.phase === 'new') return page(res, 400, 'No login in progress', 'This browser has no Pierce login in progress (or it expired). Run the login on the device again.', clear);
    if (login.phase === 'exchanging') return page(res, 409, 'Login in progress', 'This login is already being completed.');
    if (login.phase === 'failed') return page(res, 410, 'Login already finished', login.error!.message, clear);
    login.phase = 'exchanging';
    let user: string;
    try {
      user = await this.verify(url, login);
    } catch (err) {
      const denied = err instanceof oidc.AuthorizationResponseError && err.error === 'access_denied';
      const error = new LoginError(denied ? 403 : 401, err instanceof LoginError ? err.message : describe(err));
      if (login.phase === 'exchanging') this.fail(login, error);
      return page(res, denied ? 403 : 400, 'Login failed', error.message, clear);
    }
    if (login.phase !== 'exchanging') return page(res, 410, 'Login already finished', login.error?.message ?? 'This login has ended.', clear);
    let outcome: { pendingApproval: boolean };
    try {
      outcome = this.hooks.complete(login.request, user);
    } catch (err) {
      const error = new LoginError(403, (err as Error).message);
      this.fail(login, error);
      return page(res, 403, 'Login refused', error.message, clear);
    }
    this.drop(login);
    this.wake(login.request.machineKey);
    const text = outcome.pendingApproval ? `Logged in as ${user}. ${login.request.hostname} now waits for an administrator to approve it.` : `Logged in as ${user}. ${login.request.hostname} is connected; you can close this window.`;
    page(res, 200, 'Logged in', text, clear);
  }

  /** Runs the code exchange with every check openid-client offers; returns the Pierce user. */
  private async verify(url: URL, login: Login): Promise<string> {
    const config = await this.configuration();
    const current = new URL(this.redirectUri);
    current.search = url.search;
    const tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: login.verifier, expectedState: login.state, expectedNonce: login.nonce, idTokenExpected: true });
    const claims = tokens.claims();
    if (!claims) throw new LoginError(401, 'the identity provider returned no ID token');
    let email: unknown = claims.email;
    let verified: unknown = claims.email_verified;
    // Many providers put `email` only in the UserInfo response (OIDC Core §5.4).
    if (email === undefined) {
      const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
      email = info.email;
      verified = info.email_verified;
    }
    if (typeof email !== 'string' || !EMAIL.test(email)) throw new LoginError(401, 'the identity provider did not return a usable email claim (request the "email" scope)');
    if (verified === false) throw new LoginError(401, `the identity provider has not verified ${email}`);
    return email.toLowerCase();
  }

  close(): void {
    this.closed = true;
    for (const login of this.byId.values()) clearTimeout(login.timer);
    this.byId.clear();
    this.byMachine.clear();
    for (const key of [...this.wakers.keys()]) this.wake(key);
  }
}
