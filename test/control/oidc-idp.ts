// A real OpenID Connect provider (oidc-provider) on loopback and a small cookie-keeping
// "browser", shared by the control server's SSO tests and the engine's `up` login test.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

export const CLIENT_ID = 'pierce-control';
export const CLIENT_SECRET = randomBytes(24).toString('hex');
/** The provider's accounts: id → email (mixed case on purpose: Pierce users are lower case). */
export const ACCOUNTS: Record<string, string> = { alice: 'Alice@Example.com', carol: 'carol@example.com' };

type Payload = Record<string, unknown> & { uid?: string; userCode?: string; grantId?: string; consumed?: number };

/** oidc-provider's storage for one test provider (the provider warns about its built-in one on every start). */
class MemoryStore {
  private static readonly all = new Map<string, Payload>();
  constructor(private readonly model: string) {}
  private key = (id: string) => `${this.model}:${id}`;
  async upsert(id: string, payload: Payload): Promise<void> {
    MemoryStore.all.set(this.key(id), payload);
  }
  async find(id: string): Promise<Payload | undefined> {
    return MemoryStore.all.get(this.key(id));
  }
  async findByUid(uid: string): Promise<Payload | undefined> {
    for (const [k, v] of MemoryStore.all) if (k.startsWith(`${this.model}:`) && v.uid === uid) return v;
    return undefined;
  }
  async findByUserCode(code: string): Promise<Payload | undefined> {
    for (const [k, v] of MemoryStore.all) if (k.startsWith(`${this.model}:`) && v.userCode === code) return v;
    return undefined;
  }
  async consume(id: string): Promise<void> {
    const p = MemoryStore.all.get(this.key(id));
    if (p) p.consumed = Math.floor(Date.now() / 1000);
  }
  async destroy(id: string): Promise<void> {
    MemoryStore.all.delete(this.key(id));
  }
  async revokeByGrantId(grantId: string): Promise<void> {
    for (const [k, v] of MemoryStore.all) if (v.grantId === grantId) MemoryStore.all.delete(k);
  }
}

/** A real OIDC provider on loopback whose interaction step logs in as `account` or denies consent. */
export class TestIdp {
  account: string | 'deny' = 'alice';
  issuer = '';
  private provider?: Provider;
  private handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  private readonly http = http.createServer((req, res) => void this.serve(req, res));

  static async listen(): Promise<TestIdp> {
    const idp = new TestIdp();
    await new Promise<void>((resolve) => idp.http.listen(0, '127.0.0.1', resolve));
    idp.issuer = `http://127.0.0.1:${(idp.http.address() as { port: number }).port}`;
    return idp;
  }

  /** The client's redirect URI is only known once the control server listens. */
  configure(redirectUri: string): void {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    this.provider = new Provider(this.issuer, {
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [redirectUri], response_types: ['code'], grant_types: ['authorization_code'] }],
      findAccount: async (_ctx, id) => (ACCOUNTS[id] ? { accountId: id, claims: () => ({ sub: id, email: ACCOUNTS[id], email_verified: true }) } : undefined),
      claims: { openid: ['sub'], email: ['email', 'email_verified'] },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      features: { devInteractions: { enabled: false } },
      pkce: { required: () => true },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      jwks: { keys: [{ ...jwk, kid: 'test', use: 'sig', alg: 'RS256' }] },
      adapter: MemoryStore,
      ttl: { AuthorizationCode: 60, Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    });
    this.handler = this.provider.callback();
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      if (!this.provider || !this.handler) throw new Error('provider not configured');
      if (!req.url?.startsWith('/interaction/')) return this.handler(req, res);
      const p = this.provider;
      const details = await p.interactionDetails(req, res);
      if (this.account === 'deny') return await p.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user declined' }, { mergeWithLastSubmission: false });
      if (details.prompt.name === 'login') return await p.interactionFinished(req, res, { login: { accountId: this.account } }, { mergeWithLastSubmission: false });
      const grant = new p.Grant({ accountId: details.session!.accountId, clientId: details.params.client_id });
      if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
      if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
      await p.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`test idp: ${(err as Error).message}`);
    }
  }

  close(): Promise<void> {
    this.http.closeAllConnections();
    return new Promise((resolve) => this.http.close(() => resolve()));
  }
}

interface Cookie {
  host: string;
  name: string;
  value: string;
  path: string;
}

/** Just enough of a browser: a cookie jar (host + path scoped) and manual redirects. */
export class Browser {
  private cookies: Cookie[] = [];

  async get(url: string | URL): Promise<{ status: number; location?: URL; body: string }> {
    const u = new URL(url);
    const cookie = this.cookies.filter((c) => c.host === u.host && u.pathname.startsWith(c.path)).map((c) => `${c.name}=${c.value}`);
    const res = await fetch(u, { redirect: 'manual', headers: cookie.length ? { cookie: cookie.join('; ') } : {} });
    for (const line of res.headers.getSetCookie()) this.store(u, line);
    const location = res.headers.get('location');
    return { status: res.status, location: location ? new URL(location, u) : undefined, body: await res.text() };
  }

  private store(u: URL, line: string): void {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim());
    const eq = pair.indexOf('=');
    const c: Cookie = { host: u.host, name: pair.slice(0, eq), value: pair.slice(eq + 1), path: '/' };
    let gone = false;
    for (const a of attrs) {
      const [k, v = ''] = a.split('=');
      if (/^path$/i.test(k)) c.path = v;
      if (/^max-age$/i.test(k) && Number(v) <= 0) gone = true;
      if (/^expires$/i.test(k) && Date.parse(v) <= Date.now()) gone = true;
    }
    this.cookies = this.cookies.filter((x) => !(x.host === c.host && x.name === c.name && x.path === c.path));
    if (!gone) this.cookies.push(c);
  }

  /** Follows redirects from `url`; stops before requesting a URL that `until` matches. */
  async follow(url: string | URL, until?: (u: URL) => boolean): Promise<{ status: number; url: URL; body: string; stopped: boolean }> {
    let u = new URL(url);
    for (let hop = 0; hop < 20; hop++) {
      if (until?.(u)) return { status: 0, url: u, body: '', stopped: true };
      const r = await this.get(u);
      if (!r.location || r.status < 300 || r.status >= 400) return { ...r, url: u, stopped: false };
      u = r.location;
    }
    throw new Error(`too many redirects from ${url}`);
  }
}

export const isCallback = (u: URL) => u.pathname === '/oidc/callback';
