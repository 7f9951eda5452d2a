/**
 * `pierce wg up <file.conf>` / `pierce wg show`: plain WireGuard mode. Runs one wg-quick style
 * tunnel in the foreground (userspace WireGuard on a TUN device and a UDP socket) until
 * SIGINT/SIGTERM, prints `wg show`-like status on SIGUSR1 and serves it on a Unix socket
 * for `pierce wg show`.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { createTun } from '../../../native/index.js';
import { keyToBase64 } from '../../protocol/keys.js';
import { AEAD_NAMES, type AeadName, selectAead } from '../../wireguard/aead.js';
import { Device } from '../../wireguard/device.js';
import { DEFAULT_TIMERS, type WireGuardTimers } from '../../wireguard/timers.js';
import { UdpBind } from '../../wireguard/udp-bind.js';
import { parseWgQuick } from '../../wireguard/wgquick.js';
import { type WgStatus, fetchStatus, formatWgStatus, listStatusSockets, serveStatus } from '../wg-status.js';

/**
 * TEST-ONLY: `PIERCE_WG_TEST_TIMERS="rekeyAfterTimeMs=3000,keepaliveTimeoutMs=500"` shrinks the
 * whitepaper §6.1 timers so interop tests can force rekeys in seconds. Never set it in production.
 */
export const TEST_TIMERS_ENV = 'PIERCE_WG_TEST_TIMERS';

export function parseTestTimers(text: string): Partial<WireGuardTimers> {
  const out: Partial<WireGuardTimers> = {};
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [k, v] = item.split('=');
    if (!(k in DEFAULT_TIMERS)) throw new Error(`${TEST_TIMERS_ENV}: unknown timer "${k}" (known: ${Object.keys(DEFAULT_TIMERS).join(', ')})`);
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${TEST_TIMERS_ENV}: ${k} must be a positive number`);
    out[k as keyof WireGuardTimers] = n;
  }
  return out;
}

/** Default interface name as wg-quick derives it: the config file name without ".conf". */
function defaultIfName(file: string): string {
  return basename(file).replace(/\.conf$/, '');
}

async function up(file: string, opts: { tun?: string; aead?: string; tunWriter?: string; tunOffload?: string }): Promise<void> {
  const cfg = parseWgQuick(readFileSync(file, 'utf8'));
  for (const w of cfg.warnings) process.stderr.write(`pierce wg: ${w}\n`);
  if (opts.aead !== undefined && !AEAD_NAMES.includes(opts.aead as AeadName)) throw new Error(`--aead must be one of ${AEAD_NAMES.join(', ')}`);
  if (opts.tunWriter !== undefined && opts.tunWriter !== 'direct' && opts.tunWriter !== 'worker') throw new Error('--tun-writer must be "direct" or "worker"');
  if (opts.tunOffload !== undefined && opts.tunOffload !== 'on' && opts.tunOffload !== 'off') throw new Error('--tun-offload must be "on" or "off"');
  const timersEnv = process.env[TEST_TIMERS_ENV];
  const timers = timersEnv ? parseTestTimers(timersEnv) : undefined;
  if (timers) process.stderr.write(`pierce wg: TEST-ONLY timers from ${TEST_TIMERS_ENV}: ${JSON.stringify(timers)}\n`);

  const routes: string[] = [];
  for (const p of cfg.peers) {
    for (const a of p.allowedIps) {
      // A default route would capture the tunnel's own UDP traffic; wg-quick needs policy routing for that.
      if (a.endsWith('/0')) process.stderr.write(`pierce wg: not installing a route for ${a}; add narrower AllowedIPs or route it yourself\n`);
      else routes.push(a);
    }
  }
  const writer = opts.tunWriter as 'direct' | 'worker' | undefined;
  const aead = selectAead(opts.aead as AeadName | undefined);
  const tun = await createTun({ name: opts.tun ?? defaultIfName(file), mtu: cfg.mtu, addresses: cfg.addresses, routes, writer, offload: opts.tunOffload !== 'off' });
  const bind = new UdpBind({ port: cfg.listenPort });
  const device = new Device({
    privateKey: cfg.privateKey,
    tun,
    bind,
    aead,
    timers,
    log: process.env.PIERCE_WG_DEBUG ? (m) => process.stderr.write(`pierce wg: ${m}\n`) : undefined,
  });
  cfg.privateKey.fill(0);
  const snapshot = (): WgStatus => ({
    interface: tun.name,
    publicKey: keyToBase64(device.publicKey),
    listenPort: bind.port,
    aead: device.aead.name,
    peers: device.peers().map((p) => ({ ...p, publicKey: keyToBase64(p.publicKey) })),
  });
  let status: { close(): Promise<void> } | undefined;
  try {
    for (const p of cfg.peers) device.setPeer(p);
    await device.up();
    status = await serveStatus(tun.name, snapshot);
  } catch (err) {
    await device.close();
    throw err;
  }
  process.on('SIGUSR1', () => process.stdout.write(formatWgStatus(snapshot())));
  process.stdout.write(`pierce wg: ${tun.name} up, listening on UDP ${bind.port}, ${cfg.peers.length} peer(s), aead ${device.aead.name}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await status.close();
  await device.close();
  process.stdout.write(`pierce wg: ${tun.name} down\n`);
}

async function show(opts: { tun?: string; json?: boolean }): Promise<void> {
  const names = opts.tun ? [opts.tun] : listStatusSockets();
  if (names.length === 0) throw new Error('no running `pierce wg up` found');
  const all = await Promise.all(names.map((n) => fetchStatus(n)));
  if (opts.json) process.stdout.write(`${JSON.stringify(opts.tun ? all[0] : all)}\n`);
  else process.stdout.write(all.map((s) => formatWgStatus(s)).join('\n'));
}

export function register(program: Command): void {
  const wg = program.command('wg').description('plain WireGuard mode (wg-quick configs, interoperable with any WireGuard peer)');
  wg.command('up')
    .description('run the tunnel described by a wg-quick config in the foreground (Ctrl-C to stop; SIGUSR1 prints status)')
    .argument('<file>', 'wg-quick style .conf file')
    .option('--tun <name>', 'TUN interface name (default: the file name without .conf)')
    .option('--aead <backend>', 'transport cipher backend: sodium (libsodium), node (OpenSSL) or noble (pure JS); default: the first available that passes its self-test, in that order')
    .option('--tun-writer <mode>', 'Linux: write packets to the TUN from the main thread (direct) or a writer thread (worker)')
    .option('--tun-offload <on|off>', 'Linux: take TCP super-packets from the TUN (IFF_VNET_HDR + TSO) and split them in the reader thread (default on)')
    .action(async (file: string, opts: { tun?: string; aead?: string; tunWriter?: string; tunOffload?: string }) => up(file, opts));
  wg.command('show')
    .description('print status of running tunnels, like `wg show`')
    .option('--tun <name>', 'only this interface')
    .option('--json', 'machine-readable output')
    .action(async (opts: { tun?: string; json?: boolean }) => show(opts));
}
