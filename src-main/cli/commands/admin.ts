/**
 * `pierce admin --server URL …`: the coordination server's admin API from the command line
 * (nodes, pre-auth keys, policy). The admin key comes from --admin-key, else $PIERCE_ADMIN_KEY,
 * else <data-dir>/admin.key (--data-dir, for an admin on the server's machine).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';

interface AdminOptions {
  server: string;
  adminKey?: string;
  dataDir?: string;
}

interface NodeView {
  id: string;
  name: string;
  user?: string;
  tags: string[];
  addresses: string[];
  online: boolean;
  keyExpiry?: string;
  lastSeen?: string;
  ephemeral?: boolean;
  pendingApproval?: boolean;
}

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "30m", "1h", "7d" → seconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text.trim());
  if (!m || !(Number(m[1]) > 0)) throw new Error(`--expiry must be a duration like 90s, 30m, 1h or 7d, got "${text}"`);
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

function adminKey(o: AdminOptions): string {
  if (o.adminKey) return o.adminKey;
  if (process.env.PIERCE_ADMIN_KEY) return process.env.PIERCE_ADMIN_KEY;
  if (o.dataDir) {
    const file = join(o.dataDir, 'admin.key');
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new Error(`cannot read the admin key from ${file}: ${(err as Error).message}`, { cause: err });
    }
  }
  throw new Error('no admin key: pass --admin-key, set PIERCE_ADMIN_KEY, or pass --data-dir of the server');
}

async function call<T>(o: AdminOptions, method: string, path: string, body?: string): Promise<T> {
  const key = adminKey(o);
  let res: Response;
  try {
    res = await fetch(new URL(path, o.server), { method, headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body });
  } catch (err) {
    throw new Error(`cannot reach the coordination server at ${o.server}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let value: T & { error?: string };
  try {
    value = JSON.parse(text) as T & { error?: string };
  } catch {
    throw new Error(`${method} ${path}: HTTP ${res.status}, not a Pierce coordination server reply: ${text.slice(0, 200)}`);
  }
  if (!res.ok) throw new Error(value.error ?? `${method} ${path}: HTTP ${res.status}`);
  return value;
}

function nodeTable(nodes: NodeView[]): string {
  const rows = [['ID', 'NAME', 'OWNER', 'ADDRESSES', 'STATUS', 'LAST SEEN', 'KEY EXPIRY']];
  for (const n of nodes) {
    const status = n.pendingApproval ? 'pending approval' : n.online ? 'online' : 'offline';
    rows.push([n.id, n.name, n.tags.length ? n.tags.join(',') : (n.user ?? '-'), n.addresses.join(' '), `${status}${n.ephemeral ? ' (ephemeral)' : ''}`, n.lastSeen ?? '-', n.keyExpiry ?? 'disabled']);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

const print = (s: string) => process.stdout.write(`${s}\n`);

export function register(program: Command): void {
  const admin = program
    .command('admin')
    .description("manage a coordination server through its admin API (nodes, pre-auth keys, policy)")
    .requiredOption('--server <url>', 'coordination server URL, e.g. http://127.0.0.1:8080')
    .option('--admin-key <key>', 'admin API key (default: $PIERCE_ADMIN_KEY, else <data-dir>/admin.key)')
    .option('--data-dir <dir>', "the server's data directory, to read admin.key from");
  const opts = (): AdminOptions => admin.opts<AdminOptions>();

  const nodes = admin.command('nodes').description('list, remove, expire and tag nodes');
  nodes
    .command('list')
    .description('list every node')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { nodes: list } = await call<{ nodes: NodeView[] }>(opts(), 'GET', '/api/nodes');
      print(o.json ? JSON.stringify(list, null, 2) : list.length ? nodeTable(list) : 'no nodes');
    });
  nodes
    .command('rm <id>')
    .description('remove a node (its peers drop it at once)')
    .action(async (id: string) => {
      await call(opts(), 'DELETE', `/api/nodes/${encodeURIComponent(id)}`);
      print(`removed ${id}`);
    });
  nodes
    .command('expire <id>')
    .description("expire a node's key now (it must log in again)")
    .action(async (id: string) => {
      await call(opts(), 'POST', `/api/nodes/${encodeURIComponent(id)}/expire`);
      print(`expired the key of ${id}`);
    });
  nodes
    .command('tag <id> <tags>')
    .description('set a node\'s tags, comma-separated (e.g. tag:server,tag:prod); each must be in tagOwners')
    .action(async (id: string, tags: string) => {
      const list = tags.split(',').map((t) => t.trim()).filter(Boolean);
      await call(opts(), 'POST', `/api/nodes/${encodeURIComponent(id)}/tags`, JSON.stringify({ tags: list }));
      print(`${id} tags: ${list.join(', ') || '(none)'}`);
    });

  admin
    .command('preauthkey')
    .description('pre-auth keys')
    .command('create')
    .description('create a pre-auth key; prints the secret once')
    .requiredOption('--user <login>', 'the user the nodes will belong to, e.g. alice@example.com')
    .option('--reusable', 'usable for many nodes (default: single use)')
    .option('--ephemeral', 'nodes are removed after they go offline')
    .option('--tags <tags>', 'comma-separated tags for the nodes (each must be in tagOwners)')
    .option('--expiry <duration>', 'how long the key is valid: 90s, 30m, 1h, 7d', '1h')
    .option('--json', 'print JSON')
    .action(async (o: { user: string; reusable?: boolean; ephemeral?: boolean; tags?: string; expiry: string; json?: boolean }) => {
      const tags = o.tags ? o.tags.split(',').map((t) => t.trim()).filter(Boolean) : [];
      const body = { user: o.user, reusable: !!o.reusable, ephemeral: !!o.ephemeral, tags, expiresInS: parseDuration(o.expiry) };
      const r = await call<{ id: string; key: string; expires: string }>(opts(), 'POST', '/api/preauthkeys', JSON.stringify(body));
      print(o.json ? JSON.stringify(r, null, 2) : `${r.key}\n(id ${r.id}, expires ${r.expires})`);
    });

  const policy = admin.command('policy').description("the tailnet's HuJSON ACL policy");
  policy
    .command('get')
    .description('print the current policy')
    .action(async () => {
      const r = await call<{ policy?: string }>(opts(), 'GET', '/api/policy');
      process.stdout.write(r.policy ?? '');
    });
  policy
    .command('set <file>')
    .description("replace the policy; the server refuses it when it is invalid or one of its tests fails")
    .action(async (file: string) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
      }
      const r = await call<{ tests: number; warnings?: string[] }>(opts(), 'PUT', '/api/policy', text);
      for (const w of r.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      print(`policy set (${r.tests} test flows passed)`);
    });
}
