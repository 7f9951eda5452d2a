/**
 * Status of a running `pierce wg up`: a JSON snapshot served on a Unix socket
 * (/run/pierce/wg-NAME.sock, directory 0700, socket 0600 — only root or the owner can read
 * peers' endpoints), and the `wg show`-like text rendering of it.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { type Server, connect, createServer } from 'node:net';
import { join } from 'node:path';

export interface WgPeerStatus {
  publicKey: string;
  endpoint?: string;
  lastHandshakeMs?: number;
  rxBytes: number;
  txBytes: number;
  allowedIps: string[];
  persistentKeepalive?: number;
}

export interface WgStatus {
  interface: string;
  publicKey: string;
  listenPort?: number;
  aead: string;
  peers: WgPeerStatus[];
}

/** Overridable so tests or unprivileged setups can pick another directory. */
export function statusDir(): string {
  return process.env.PIERCE_RUN_DIR ?? '/run/pierce';
}

export function statusSocketPath(iface: string): string {
  return join(statusDir(), `wg-${iface}.sock`);
}

/** Interfaces with a status socket, i.e. running `pierce wg up` processes. */
export function listStatusSockets(): string[] {
  if (!existsSync(statusDir())) return [];
  return readdirSync(statusDir())
    .filter((f) => f.startsWith('wg-') && f.endsWith('.sock'))
    .map((f) => f.slice(3, -5))
    .sort();
}

export async function serveStatus(iface: string, snapshot: () => WgStatus): Promise<{ close(): Promise<void> }> {
  const path = statusSocketPath(iface);
  mkdirSync(statusDir(), { recursive: true, mode: 0o700 });
  if (existsSync(path)) unlinkSync(path);
  const server: Server = createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.end(JSON.stringify(snapshot()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  return {
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (existsSync(path)) unlinkSync(path);
    },
  };
}

const MAX_STATUS_BYTES = 4 << 20;

export async function fetchStatus(iface: string): Promise<WgStatus> {
  const path = statusSocketPath(iface);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const sock = connect(path);
    sock.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_STATUS_BYTES) sock.destroy(new Error(`status from ${path} is too large`));
      else chunks.push(c);
    });
    sock.on('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new Error(`no running \`pierce wg up\` for ${iface} (${path})`) : err),
    );
    sock.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WgStatus);
      } catch {
        reject(new Error(`malformed status from ${path}`));
      }
    });
  });
}

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}

function age(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  if (s === 0) return 'Now';
  const parts: string[] = [];
  for (const [unit, len] of [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]] as const) {
    const v = Math.floor(s / len);
    s -= v * len;
    if (v > 0) parts.push(`${v} ${unit}${v === 1 ? '' : 's'}`);
  }
  return `${parts.join(', ')} ago`;
}

/** The layout of `wg show`: interface block, then one block per peer. */
export function formatWgStatus(st: WgStatus, nowMs = Date.now()): string {
  const out = [`interface: ${st.interface}`, `  public key: ${st.publicKey}`];
  if (st.listenPort !== undefined) out.push(`  listening port: ${st.listenPort}`);
  out.push(`  cipher backend: ${st.aead}`);
  for (const p of st.peers) {
    out.push('', `peer: ${p.publicKey}`);
    if (p.endpoint) out.push(`  endpoint: ${p.endpoint}`);
    out.push(`  allowed ips: ${p.allowedIps.length ? p.allowedIps.join(', ') : '(none)'}`);
    if (p.lastHandshakeMs) out.push(`  latest handshake: ${age(nowMs - p.lastHandshakeMs)}`);
    if (p.rxBytes || p.txBytes) out.push(`  transfer: ${bytes(p.rxBytes)} received, ${bytes(p.txBytes)} sent`);
    if (p.persistentKeepalive) out.push(`  persistent keepalive: every ${p.persistentKeepalive} seconds`);
  }
  return `${out.join('\n')}\n`;
}
