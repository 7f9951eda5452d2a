/**
 * Interop harness: two network namespaces joined by a veth pair (A = 192.168.77.1, B =
 * 192.168.77.2), Pierce's `pierce wg up` and Debian's wireguard-go running inside them, and
 * small traffic fixtures. Every name carries a per-run random prefix (pw-<hex>-) so parallel
 * runs never collide; close() removes everything it made, even after a failure.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type WgStatus, fetchStatus } from '../../src-main/cli/wg-status.js';
import { generateKeyPair, keyToBase64 } from '../../src-main/protocol/keys.js';
import type { AeadName } from '../../src-main/wireguard/aead.js';

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const fixture = (f: string) => fileURLToPath(new URL(f, import.meta.url));
/** argv that runs one of this folder's .ts fixtures with tsx. */
export const nodeFixture = (f: string, args: string[]) => [process.execPath, '--import', 'tsx', fixture(f), ...args];

export const A_UNDERLAY = '192.168.77.1';
export const B_UNDERLAY = '192.168.77.2';
export const A_TUNNEL = '10.9.0.1';
export const B_TUNNEL = '10.9.0.2';
export const A_PORT = 51820;
export const B_PORT = 51821;

/** Fails (never skips) naming the Debian package when a tool is missing. */
export async function requireTools(tools: Array<[cmd: string, pkg: string]>): Promise<void> {
  if (process.getuid?.() !== 0) assert.fail('WireGuard interop tests need root (network namespaces, TUN devices)');
  for (const [cmd, pkg] of tools) {
    await run('sh', ['-c', `command -v ${cmd}`]).catch(() => assert.fail(`\`${cmd}\` is missing: install the Debian package ${pkg}`));
  }
}

export interface Managed {
  readonly proc: ChildProcess;
  readonly log: () => string;
  /** Sends SIGTERM and resolves with the exit code once the process is gone. */
  stop(): Promise<number | null>;
}

export function manage(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Managed {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return {
    proc,
    log: () => out,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  assert.fail(`timed out waiting for ${what}`);
}

export interface WgKeys {
  privateKey: string;
  publicKey: string;
}

export function newKeys(): WgKeys {
  const k = generateKeyPair();
  return { privateKey: keyToBase64(k.privateKey), publicKey: keyToBase64(k.publicKey) };
}

export interface Side {
  keys: WgKeys;
  psk?: string;
  /** Whether this side knows the other's endpoint (and so can initiate). */
  knowsEndpoint: boolean;
}

export class Lab {
  readonly id = randomBytes(3).toString('hex');
  readonly nsA = `pw-${this.id}-a`;
  readonly nsB = `pw-${this.id}-b`;
  private readonly dir = mkdtempSync(join(tmpdir(), `pw-${this.id}-`));
  private readonly procs: Managed[] = [];
  private made: string[] = [];

  static async create(): Promise<Lab> {
    const lab = new Lab();
    try {
      for (const ns of [lab.nsA, lab.nsB]) {
        await run('ip', ['netns', 'add', ns]);
        lab.made.push(ns);
        await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      }
      const va = `pw${lab.id}a`;
      const vb = `pw${lab.id}b`;
      await run('ip', ['link', 'add', va, 'netns', lab.nsA, 'type', 'veth', 'peer', 'name', vb, 'netns', lab.nsB]);
      await run('ip', ['-n', lab.nsA, 'addr', 'add', `${A_UNDERLAY}/24`, 'dev', va]);
      await run('ip', ['-n', lab.nsB, 'addr', 'add', `${B_UNDERLAY}/24`, 'dev', vb]);
      await run('ip', ['-n', lab.nsA, 'link', 'set', va, 'up']);
      await run('ip', ['-n', lab.nsB, 'link', 'set', vb, 'up']);
    } catch (err) {
      await lab.close();
      throw err;
    }
    return lab;
  }

  get vethA(): string {
    return `pw${this.id}a`;
  }

  /** Runs a command in a namespace and returns stdout. */
  async exec(ns: string, cmd: string[], timeoutMs = 60_000): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', ns, ...cmd], { timeout: timeoutMs, maxBuffer: 16 << 20 });
    return stdout;
  }

  /** Starts a long-running process in a namespace; stopped by close(). */
  spawn(ns: string, cmd: string[], env?: NodeJS.ProcessEnv): Managed {
    const m = manage('ip', ['netns', 'exec', ns, ...cmd], env);
    this.procs.push(m);
    return m;
  }


  private conf(self: Side, peer: Side, tunnelAddr: string | undefined, peerTunnel: string, listenPort: number, peerUnderlay: string, peerPort: number): string {
    const lines = ['[Interface]', `PrivateKey = ${self.keys.privateKey}`, `ListenPort = ${listenPort}`];
    if (tunnelAddr) lines.push(`Address = ${tunnelAddr}/24`);
    lines.push('', '[Peer]', `PublicKey = ${peer.keys.publicKey}`, `AllowedIPs = ${peerTunnel}/32`);
    if (self.psk) lines.push(`PresharedKey = ${self.psk}`);
    if (self.knowsEndpoint) lines.push(`Endpoint = ${peerUnderlay}:${peerPort}`);
    return `${lines.join('\n')}\n`;
  }

  /** `pierce wg up` on side A (or B when `onB`), resolving once it reports the interface up. */
  async pierce(self: Side, peer: Side, o: { onB?: boolean; env?: NodeJS.ProcessEnv; aead?: AeadName; nodeArgs?: string[]; args?: string[] } = {}): Promise<Managed & { tun: string }> {
    const onB = o.onB ?? false;
    const tun = `pw${this.id}${onB ? 'q' : 'p'}`;
    const file = join(this.dir, `${tun}.conf`);
    writeFileSync(
      file,
      onB
        ? this.conf(self, peer, B_TUNNEL, A_TUNNEL, B_PORT, A_UNDERLAY, A_PORT)
        : this.conf(self, peer, A_TUNNEL, B_TUNNEL, A_PORT, B_UNDERLAY, B_PORT),
      { mode: 0o600 },
    );
    const args = [process.execPath, ...(o.nodeArgs ?? []), join(ROOT, 'bin/pierce.js'), 'wg', 'up', file, '--tun', tun];
    if (o.aead) args.push('--aead', o.aead);
    if (o.args) args.push(...o.args);
    const m = this.spawn(onB ? this.nsB : this.nsA, args, o.env);
    await waitFor(`pierce wg up ${tun}`, () => {
      if (m.proc.exitCode !== null) assert.fail(`pierce wg up exited early:\n${m.log()}`);
      return m.log().includes(`${tun} up`);
    });
    return { ...m, tun };
  }

  /** wireguard-go on side B, configured with `wg setconf` and `ip`. */
  async wireguardGo(self: Side, peer: Side, o: { onA?: boolean } = {}): Promise<Managed & { iface: string }> {
    const onA = o.onA ?? false;
    const ns = onA ? this.nsA : this.nsB;
    const iface = `pw${this.id}${onA ? 'h' : 'g'}`;
    const m = this.spawn(ns, ['wireguard-go', '-f', iface], { LOG_LEVEL: 'error' });
    await waitFor(`wireguard-go ${iface}`, () => {
      if (m.proc.exitCode !== null) assert.fail(`wireguard-go exited early:\n${m.log()}`);
      return existsSync(`/var/run/wireguard/${iface}.sock`);
    });
    const file = join(this.dir, `${iface}.conf`);
    writeFileSync(
      file,
      onA ? this.conf(self, peer, undefined, B_TUNNEL, A_PORT, B_UNDERLAY, B_PORT) : this.conf(self, peer, undefined, A_TUNNEL, B_PORT, A_UNDERLAY, A_PORT),
      { mode: 0o600 },
    );
    await this.exec(ns, ['wg', 'setconf', iface, file]);
    await this.exec(ns, ['ip', 'address', 'add', `${onA ? A_TUNNEL : B_TUNNEL}/24`, 'dev', iface]);
    await this.exec(ns, ['ip', 'link', 'set', iface, 'mtu', '1280', 'up']);
    return { ...m, iface };
  }

  /** Pierce's status straight from its status socket (what `pierce wg show --json` prints), cheap enough to poll. */
  async pierceStatus(tun: string): Promise<WgStatus> {
    return fetchStatus(tun);
  }

  logs(): string {
    return this.procs.map((p, i) => `--- process ${i}: ${p.proc.spawnargs.slice(3).join(' ')}\n${p.log()}`).join('\n');
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.procs.map((p) => p.stop()));
    for (const ns of this.made.reverse()) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    this.made = [];
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Sends `bytes` (or for `seconds`) from one namespace to the other through the tunnel; both ends' SHA-256 must match. */
export async function transfer(lab: Lab, fromNs: string, toNs: string, toAddr: string, bytes: number, seconds?: number): Promise<{ bytes: number; ms: number }> {
  const recv = lab.spawn(toNs, nodeFixture('tcp-xfer.ts', ['recv', toAddr, '7001']));
  await waitFor('TCP receiver', () => recv.log().includes('listening'));
  const t0 = Date.now();
  const args = ['send', toAddr, '7001', String(bytes)];
  if (seconds !== undefined) args.push(String(seconds));
  const sent = JSON.parse(await lab.exec(fromNs, nodeFixture('tcp-xfer.ts', args), 120_000)) as { bytes: number; sha256: string };
  await waitFor('receiver digest', () => recv.log().includes('sha256'), 30_000);
  const got = JSON.parse(recv.log().split('\n').find((l) => l.includes('sha256')) ?? '{}') as { bytes: number; sha256: string };
  assert.equal(got.bytes, sent.bytes, 'byte counts match');
  assert.equal(got.sha256, sent.sha256, 'SHA-256 of received data matches what was sent');
  return { bytes: sent.bytes, ms: Date.now() - t0 };
}

export const interopTools: Array<[string, string]> = [
  ['ip', 'iproute2'],
  ['wireguard-go', 'wireguard-go'],
  ['wg', 'wireguard-tools'],
];
