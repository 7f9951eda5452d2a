// A minimal home-router lab in network namespaces, built per test run (to move onto the
// netlab harness once it offers a miniupnpd router):
//
//   <p>-lan (10.77.1.2) ── <p>-rtr (10.77.1.1 | 5.77.0.1, masquerade + miniupnpd) ── <p>-wan (5.77.0.2)
//
// The "public" 5.77.0.0/24 exists only between the two namespaces. miniupnpd-iptables drives
// the legacy iptables backend (libiptc), so its chains are created with iptables-legacy.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const LAN_IP = '10.77.1.2';
export const GATEWAY_IP = '10.77.1.1';
export const ROUTER_WAN_IP = '5.77.0.1';
export const WAN_IP = '5.77.0.2';

function sh(cmd: string[], allowFail = false): string {
  const r = spawnSync(cmd[0] as string, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** Fails (never skips) with the missing package's name, per the project's test rules. */
export function requireTools(tools: Record<string, string>): void {
  if (process.getuid?.() !== 0) throw new Error('this test needs root (network namespaces)');
  for (const [path, pkg] of Object.entries(tools)) {
    if (!existsSync(path)) throw new Error(`${path} is missing: install the Debian package "${pkg}"`);
  }
}

/** Talks to an ns-agent.ts process running in a namespace. */
export class NsAgent {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private stderr = '';

  constructor(private readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { id: number; ok: boolean; value?: unknown; error?: { message: string; code?: string; resultCode?: number } };
      const w = this.waiting.get(msg.id);
      this.waiting.delete(msg.id);
      if (!w) return;
      if (msg.ok) w.resolve(msg.value);
      else w.reject(Object.assign(new Error(msg.error?.message), { code: msg.error?.code, resultCode: msg.error?.resultCode }));
    });
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    proc.on('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`agent exited (${code}): ${this.stderr}`));
      this.waiting.clear();
    });
  }

  static start(ns: string): NsAgent {
    const agent = join(import.meta.dirname, 'ns-agent.ts');
    return new NsAgent(spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', agent], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  request<T = unknown>(req: Record<string, unknown>): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.stdin!.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  create(kind: string, name: string, opts: object): Promise<void> {
    return this.request({ op: 'new', kind, name, opts });
  }

  call<T = unknown>(name: string, method: string, ...args: unknown[]): Promise<T> {
    return this.request<T>({ op: 'call', name, method, args });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    await Promise.race([this.request({ op: 'exit' }).catch(() => {}), exited]);
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

export interface RouterLabOptions {
  upnp: boolean;
  natpmp: boolean;
  /** miniupnpd's min_lifetime, so renewal tests can use short leases. */
  minLifetimeSec?: number;
}

export class RouterLab {
  readonly prefix = `pp-${randomBytes(3).toString('hex')}`;
  readonly lan = `${this.prefix}-lan`;
  readonly rtr = `${this.prefix}-rtr`;
  readonly wan = `${this.prefix}-wan`;
  private readonly dir = mkdtempSync(join(tmpdir(), 'pierce-portmap-'));
  private daemon: ChildProcess | undefined;
  private log = '';

  async start(opts: RouterLabOptions): Promise<void> {
    const { prefix: p, lan, rtr, wan } = this;
    const ns = (n: string, ...cmd: string[]) => sh(['ip', 'netns', 'exec', n, ...cmd]);
    for (const n of [lan, rtr, wan]) sh(['ip', 'netns', 'add', n]);
    sh(['ip', 'link', 'add', `${p}-l0`, 'netns', lan, 'type', 'veth', 'peer', 'name', `${p}-r0`, 'netns', rtr]);
    sh(['ip', 'link', 'add', `${p}-w0`, 'netns', wan, 'type', 'veth', 'peer', 'name', `${p}-r1`, 'netns', rtr]);
    const up = (n: string, dev: string, cidr: string) => {
      sh(['ip', '-n', n, 'addr', 'add', cidr, 'dev', dev]);
      sh(['ip', '-n', n, 'link', 'set', dev, 'up']);
      sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
    };
    up(lan, `${p}-l0`, `${LAN_IP}/24`);
    up(rtr, `${p}-r0`, `${GATEWAY_IP}/24`);
    up(rtr, `${p}-r1`, `${ROUTER_WAN_IP}/24`);
    up(wan, `${p}-w0`, `${WAN_IP}/24`);
    sh(['ip', '-n', lan, 'route', 'add', 'default', 'via', GATEWAY_IP]);
    ns(rtr, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    const ipt = (...args: string[]) => ns(rtr, 'iptables-legacy', ...args);
    const ext = `${p}-r1`;
    ipt('-t', 'nat', '-N', 'MINIUPNPD');
    ipt('-t', 'nat', '-A', 'PREROUTING', '-i', ext, '-j', 'MINIUPNPD');
    ipt('-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING');
    ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', ext, '-j', 'MINIUPNPD-POSTROUTING');
    ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', ext, '-j', 'MASQUERADE');
    ipt('-N', 'MINIUPNPD');
    ipt('-A', 'FORWARD', '-i', ext, '!', '-o', ext, '-j', 'MINIUPNPD');
    const conf = join(this.dir, 'miniupnpd.conf');
    writeFileSync(
      conf,
      [
        `ext_ifname=${ext}`,
        `listening_ip=${p}-r0`,
        `enable_upnp=${opts.upnp ? 'yes' : 'no'}`,
        `enable_natpmp=${opts.natpmp ? 'yes' : 'no'}`,
        'secure_mode=yes',
        'system_uptime=no',
        `min_lifetime=${opts.minLifetimeSec ?? 120}`,
        `lease_file=${join(this.dir, 'leases')}`,
        `uuid=${randomUUID()}`,
        'allow 1024-65535 10.77.1.0/24 1024-65535',
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    this.daemon = spawn('ip', ['netns', 'exec', rtr, 'miniupnpd', '-d', '-f', conf, '-P', join(this.dir, 'pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.daemon.stdout!.on('data', (d: Buffer) => (this.log += d.toString()));
    this.daemon.stderr!.on('data', (d: Buffer) => (this.log += d.toString()));
    const ready = opts.natpmp ? 'Listening for NAT-PMP' : 'HTTP listening';
    const deadline = Date.now() + 10_000;
    while (!this.log.includes(ready)) {
      if (this.daemon.exitCode !== null || Date.now() > deadline) throw new Error(`miniupnpd did not start: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The kernel's DNAT rules miniupnpd installed (iptables-legacy -t nat -S MINIUPNPD). */
  natRules(): string {
    return sh(['ip', 'netns', 'exec', this.rtr, 'iptables-legacy', '-t', 'nat', '-S', 'MINIUPNPD']);
  }

  /** miniupnpd's lease file: one `PROTO:extport:ip:intport:expiry-unix-time:desc` line per mapping. */
  leases(): string {
    try {
      return readFileSync(join(this.dir, 'leases'), 'utf8');
    } catch {
      return '';
    }
  }

  daemonLog(): string {
    return this.log;
  }

  async close(): Promise<void> {
    if (this.daemon && this.daemon.exitCode === null) {
      const exited = new Promise((r) => this.daemon!.once('exit', r));
      // `ip netns exec` execs miniupnpd in place, so this is miniupnpd's own pid; on SIGTERM
      // it removes the rules it added.
      this.daemon.kill('SIGTERM');
      const t = setTimeout(() => this.daemon?.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    for (const n of [this.lan, this.rtr, this.wan]) sh(['ip', 'netns', 'del', n], true);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
