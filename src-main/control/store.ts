/**
 * Persistent state of the coordination server behind one interface (`Store`), so a
 * PostgreSQL implementation can follow for multi-instance deployments. The embedded
 * default is SQLite (better-sqlite3) in WAL mode with synchronous=FULL: a write is on
 * disk before the request that made it is answered (the server awaits `durable()`), so
 * kill -9 loses nothing acknowledged. Group commit: writes made in one event-loop turn
 * share one transaction, committed (one fsync) right after that turn.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export interface NodeRecord {
  id: string;
  machineKey: string;
  nodeKey: string;
  discoKey: string;
  name: string;
  user?: string;
  tags: string[];
  ipv4: string;
  ipv6: string;
  endpoints: string[];
  homeRegion?: number;
  os?: string;
  created: number;
  /** ms since epoch; null = expiry disabled. */
  keyExpiry: number | null;
  lastSeen: number;
  ephemeral: boolean;
  /** Joined through SSO on a server with requireApproval and not yet approved: no peers, no stream. */
  pendingApproval?: boolean;
}

export interface PreAuthKeyRecord {
  id: string;
  /** SHA-256 of the secret, hex. */
  hash: string;
  user: string;
  reusable: boolean;
  ephemeral: boolean;
  tags: string[];
  expires: number;
  used: boolean;
}

export interface Store {
  nodes(): NodeRecord[];
  putNode(n: NodeRecord): void;
  deleteNode(id: string): void;
  /** Next address index; monotonic, so an address is never reused. */
  nextAddressIndex(): number;
  preAuthKeys(): PreAuthKeyRecord[];
  putPreAuthKey(k: PreAuthKeyRecord): void;
  policy(): string | undefined;
  setPolicy(text: string): void;
  audit(actor: string, action: string, detail: unknown): void;
  auditLog(limit: number): { ts: number; actor: string; action: string; detail: string }[];
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  /** Resolves once every write made so far is on disk. */
  durable(): Promise<void>;
  close(): void;
}

const MIGRATIONS = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE nodes (id TEXT PRIMARY KEY, machine_key TEXT UNIQUE NOT NULL, data TEXT NOT NULL);
   CREATE TABLE preauth_keys (id TEXT PRIMARY KEY, data TEXT NOT NULL);
   CREATE TABLE policy (id INTEGER PRIMARY KEY CHECK (id = 1), text TEXT NOT NULL);
   CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);`,
];

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private group?: { waiters: { resolve: () => void; reject: (e: Error) => void }[] };

  constructor(dataDir: string) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(dataDir, 'pierce.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = this.db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    let version = row?.version ?? 0;
    if (!row) this.db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
    for (; version < MIGRATIONS.length; version++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[version]);
        this.db.prepare('UPDATE schema_version SET version = ?').run(version + 1);
      })();
    }
  }

  nodes(): NodeRecord[] {
    return (this.db.prepare('SELECT data FROM nodes').all() as { data: string }[]).map((r) => JSON.parse(r.data) as NodeRecord);
  }
  putNode(n: NodeRecord): void {
    this.begin();
    this.db.prepare('INSERT INTO nodes (id, machine_key, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET machine_key = excluded.machine_key, data = excluded.data').run(n.id, n.machineKey, JSON.stringify(n));
  }
  deleteNode(id: string): void {
    this.begin();
    this.db.prepare('DELETE FROM nodes WHERE id = ?').run(id);
  }
  nextAddressIndex(): number {
    this.begin();
    return this.db.transaction(() => {
      const n = Number(this.getMeta('next_address') ?? '1');
      this.setMeta('next_address', String(n + 1));
      return n;
    })();
  }
  preAuthKeys(): PreAuthKeyRecord[] {
    return (this.db.prepare('SELECT data FROM preauth_keys').all() as { data: string }[]).map((r) => JSON.parse(r.data) as PreAuthKeyRecord);
  }
  putPreAuthKey(k: PreAuthKeyRecord): void {
    this.begin();
    this.db.prepare('INSERT INTO preauth_keys (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data').run(k.id, JSON.stringify(k));
  }
  policy(): string | undefined {
    return (this.db.prepare('SELECT text FROM policy WHERE id = 1').get() as { text: string } | undefined)?.text;
  }
  setPolicy(text: string): void {
    this.begin();
    this.db.prepare('INSERT INTO policy (id, text) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET text = excluded.text').run(text);
  }
  audit(actor: string, action: string, detail: unknown): void {
    this.begin();
    this.db.prepare('INSERT INTO audit (ts, actor, action, detail) VALUES (?, ?, ?, ?)').run(Date.now(), actor, action, JSON.stringify(detail));
  }
  auditLog(limit: number): { ts: number; actor: string; action: string; detail: string }[] {
    return this.db.prepare('SELECT ts, actor, action, detail FROM audit ORDER BY id DESC LIMIT ?').all(limit) as { ts: number; actor: string; action: string; detail: string }[];
  }
  getMeta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }
  setMeta(key: string, value: string): void {
    this.begin();
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }
  /** Opens the group transaction of this event-loop turn, committed right after it. */
  private begin(): void {
    if (this.group) return;
    this.group = { waiters: [] };
    this.db.exec('BEGIN');
    setImmediate(() => this.commit());
  }

  private commit(): void {
    const g = this.group;
    if (!g) return;
    this.group = undefined;
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      for (const w of g.waiters) w.reject(err as Error);
      return;
    }
    for (const w of g.waiters) w.resolve();
  }

  durable(): Promise<void> {
    const g = this.group;
    return g ? new Promise((resolve, reject) => g.waiters.push({ resolve, reject })) : Promise.resolve();
  }

  close(): void {
    this.commit();
    this.db.close();
  }
}
