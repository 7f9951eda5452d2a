/**
 * The node's commands: `pierce daemon` runs a node; `up`, `down`, `status` and `ping` talk
 * to it through the LocalAPI (src-main/protocol/localapi.ts), like every other UI.
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import { DEFAULT_SOCKET, DEFAULT_STATE_DIR, LocalApiClient } from '../../engine/localapi-client.js';
import { DEFAULT_PORT, Node } from '../../engine/node.js';
import type { PeerPath, PeerStatus, Status } from '../../protocol/localapi.js';

interface DaemonOptions {
  stateDir: string;
  socket: string;
  tun?: string;
  port: string;
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be 0-65535, got "${text}"`);
  return n;
}

/** Runs a node until SIGINT/SIGTERM; shared by `pierce daemon` and `pierce start`. */
export async function runDaemon(o: { stateDir: string; socket: string; tun?: string; port: number; alsoClose?: () => Promise<void> }): Promise<Node> {
  const node = await Node.start({ stateDir: o.stateDir, socketPath: o.socket, tunName: o.tun, port: o.port });
  const stop = () => void node.close().then(async () => {
    await o.alsoClose?.();
    process.exit(0);
  });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.stderr.write(`pierce daemon: node ${node.nodeKey.slice(0, 20)}…, LocalAPI on ${o.socket}, state in ${o.stateDir}\n`);
  return node;
}

export function formatPath(p: PeerPath): string {
  const ms = (v: number | null) => (v === null ? '' : ` ${v.toFixed(1)} ms`);
  switch (p.kind) {
    case 'direct':
      return `direct ${p.endpoint}${ms(p.latencyMs)}`;
    case 'relay':
      return `relay "${p.regionCode ?? p.region}"${ms(p.latencyMs)}`;
    case 'none':
      return '-';
  }
}

function formatStatus(s: Status): string {
  if (!s.self) return [`${s.backendState}${s.authUrl ? `: log in at ${s.authUrl}` : ''}`, ...s.health.map((h) => `  health: ${h}`)].join('\n');
  const owner = (p: { user?: string; tags: string[] }) => (p.tags.length ? p.tags.join(',') : (p.user ?? '-'));
  const row = (p: PeerStatus) => [p.addresses[0] ?? '-', p.name, owner(p), p.os ?? '-', p.online ? formatPath(p.path) : 'offline'];
  const rows = [[s.self.addresses[0] ?? '-', s.self.name, owner(s.self), '-', `self (relay home ${s.self.homeRegion ?? '-'})`], ...s.peers.map(row)];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  if (s.filterDrops) lines.push(`# ${s.filterDrops} packets dropped by the packet filter`);
  for (const h of s.health) lines.push(`# health: ${h}`);
  return lines.join('\n');
}

/** Best effort: a desktop session gets the login page opened; a headless one just has the printed URL. */
function openBrowser(url: string): void {
  const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : process.env.DISPLAY || process.env.WAYLAND_DISPLAY ? 'xdg-open' : undefined;
  if (!cmd) return;
  const child = spawn(cmd, [url], { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
}

/** Polls the daemon until the interactive login (or approval) completes or fails. */
async function waitForLogin(api: LocalApiClient, timeoutMs = 15 * 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let shown = '';
  for (;;) {
    const st = await api.status();
    if (st.backendState === 'Running') return;
    const failed = st.health.find((h) => h.startsWith('login failed'));
    if (failed || (st.backendState === 'NeedsLogin' && !st.authUrl && !st.health.length)) throw new Error(failed ?? 'login was cancelled');
    if (st.health[0] && st.health[0] !== shown) process.stderr.write(`${(shown = st.health[0])}\n`);
    if (Date.now() > end) throw new Error('timed out waiting for the login to complete');
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function register(program: Command): void {
  program
    .command('daemon')
    .description('run this machine\'s node: keys, TUN, NAT traversal, coordination stream, LocalAPI (needs root or CAP_NET_ADMIN)')
    .option('--state-dir <dir>', 'where the node keeps its keys (0600)', DEFAULT_STATE_DIR)
    .option('--socket <path>', 'LocalAPI socket', DEFAULT_SOCKET)
    .option('--tun <name>', 'TUN interface name (default pierce0 or the next free one)')
    .option('--port <n>', 'UDP port (0 = any free port)', String(DEFAULT_PORT))
    .action(async (o: DaemonOptions) => {
      await runDaemon({ stateDir: o.stateDir, socket: o.socket, tun: o.tun, port: parsePort(o.port) });
    });

  program
    .command('up')
    .description('join a tailnet (pre-auth key, or an interactive login URL)')
    .requiredOption('--server <url>', 'coordination server URL')
    .option('--auth-key <key>', 'pre-auth key (or env PIERCE_AUTH_KEY)')
    .option('--advertise-tags <tags>', 'comma-separated tags, e.g. tag:server')
    .option('--hostname <name>', 'name in the tailnet (default: the machine\'s host name)')
    .option('--socket <path>', 'LocalAPI socket', DEFAULT_SOCKET)
    .action(async (o: { server: string; authKey?: string; advertiseTags?: string; hostname?: string; socket: string }) => {
      const api = new LocalApiClient(o.socket);
      const res = await api.up({
        controlUrl: o.server,
        authKey: o.authKey ?? process.env.PIERCE_AUTH_KEY,
        advertiseTags: o.advertiseTags ? o.advertiseTags.split(',').map((t) => t.trim()) : undefined,
        hostname: o.hostname,
      });
      if (res.backendState === 'NeedsLogin') {
        if (res.authUrl) {
          process.stdout.write(`To authenticate, visit:\n\n\t${res.authUrl}\n\n`);
          openBrowser(res.authUrl);
        }
        await waitForLogin(api);
      }
      const st = await api.status();
      process.stdout.write(`${st.backendState}${st.self ? `: ${st.self.name} ${st.self.addresses.join(' ')}` : ''}\n`);
    });

  program
    .command('down')
    .description('leave the tailnet (keys are kept; `up` rejoins)')
    .option('--socket <path>', 'LocalAPI socket', DEFAULT_SOCKET)
    .action(async (o: { socket: string }) => {
      const st = await new LocalApiClient(o.socket).down();
      process.stdout.write(`${st.backendState}\n`);
    });

  program
    .command('status')
    .description('this node and its peers, with each peer\'s path (direct or relay)')
    .option('--json', 'the LocalAPI Status as JSON (stable schema, see docs/localapi.md)')
    .option('--socket <path>', 'LocalAPI socket', DEFAULT_SOCKET)
    .action(async (o: { json?: boolean; socket: string }) => {
      const st = await new LocalApiClient(o.socket).status();
      process.stdout.write(`${o.json ? JSON.stringify(st, null, 2) : formatStatus(st)}\n`);
    });

  program
    .command('ping')
    .description('disco ping a peer: first through the relay, then on each direct candidate')
    .argument('<peer>', 'peer name, tailnet address or node key')
    .option('--socket <path>', 'LocalAPI socket', DEFAULT_SOCKET)
    .action(async (peer: string, o: { socket: string }) => {
      const r = await new LocalApiClient(o.socket).ping(peer);
      for (const s of r.steps)
        process.stdout.write(s.via === 'relay' ? `pong from ${r.peer} via relay region ${s.region} in ${s.latencyMs.toFixed(1)} ms\n` : `pong from ${r.peer} direct to ${s.endpoint} in ${s.latencyMs.toFixed(1)} ms\n`);
      if (r.error) throw new Error(r.error);
    });
}
