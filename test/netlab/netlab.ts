/**
 * Netlab: real network topologies on one Linux machine, built from network namespaces,
 * veth pairs, bridges and the kernel's own netfilter NAT. Nothing is simulated in
 * JavaScript: a router with `nat: 'edm'` is a namespace running
 * `iptables -t nat ... MASQUERADE --random-fully`.
 *
 *   const lab = await Netlab.create({ name: 'eim-vs-edm' });
 *   const inet = lab.internet();
 *   const home = lab.router({ upstream: inet, nat: 'eim' });
 *   const a = lab.host({ lan: home }), s = lab.publicHost();
 *   await lab.up(); await a.exec(['ping', '-c1', s.addr]); await lab.down();
 *
 * Address plan (documentation ranges; traffic never leaves the namespaces):
 * - internet: 198.51.100.0/24 (+ 203.0.113.0/24 as a second public subnet on the same
 *   segment, for "two different public addresses"), 2001:db8::/64;
 * - router k's LAN: 10.k.0.0/24 (carrier routers: 100.64.k.0/24, RFC 6598), and
 *   2001:db8:k::/64 when the router has `ipv6: true`;
 * - routers running miniupnpd: WAN in PORTMAP_WAN_PREFIX.0/24, or behind carrier k in
 *   PORTMAP_CARRIER_PREFIX.k.0/24 (see there why).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETLAB_TOOLS, requireRoot, requireTools } from './require.js';

export type NatKind = 'none' | 'eim' | 'edm' | 'udp-blocked';

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Resolve with a non-zero code instead of throwing. */
  allowFail?: boolean;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface NetemOptions {
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  rateMbit?: number;
}

export const REGISTRY = '/run/pierce-netlab';
/**
 * miniupnpd refuses to map when its WAN address is in any reserved range, and that list
 * includes every documentation range, so routers running it get a WAN address from this
 * block instead. Like everything else here it exists only on the lab's isolated bridge,
 * which has no link to any real network.
 */
export const PORTMAP_WAN_PREFIX = '5.77.0';
/** For the same reason, a miniupnpd router behind carrier k gets its WAN from `${PORTMAP_CARRIER_PREFIX}.k.0/24`, a second subnet on the carrier's LAN. */
export const PORTMAP_CARRIER_PREFIX = '5.78';
const PREFIX = 'pl-';

function sh(cmd: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 << 20, env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      if (code !== 0 && !opts.allowFail) reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${String(stderr).trim() || (err as Error).message}`));
      else resolve({ stdout: String(stdout), stderr: String(stderr), code });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** A process running inside a namespace, with its output kept for failure reports. */
export class LabProcess {
  private out = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const keep = (d: Buffer) => {
      this.out += d.toString();
      if (this.out.length > 1 << 20) this.out = this.out.slice(-(1 << 19));
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  get output(): string {
    return this.out;
  }

  /** Resolves when the output matches, rejects if the process exits or time runs out. */
  waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.out.match(pattern);
        if (m) {
          done();
          resolve(m);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms; output:\n${this.out}`));
      }, timeoutMs);
      const onExit = (code: number | null) => {
        done();
        reject(new Error(`${this.name} exited (${code}) before ${pattern}; output:\n${this.out}`));
      };
      const done = () => {
        clearTimeout(timer);
        this.child.stdout?.off('data', check);
        this.child.stderr?.off('data', check);
        this.child.off('exit', onExit);
      };
      this.child.stdout?.on('data', check);
      this.child.stderr?.on('data', check);
      this.child.once('exit', onExit);
      check();
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 3000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

/** Anything that lives in its own namespace and can run commands there. */
abstract class Node {
  readonly processes: LabProcess[] = [];
  /** The interface towards this node's upstream (host: eth0, router: wan). */
  abstract readonly uplink: string;

  constructor(
    protected readonly lab: Netlab,
    readonly name: string,
    readonly ns: string,
  ) {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return sh('ip', ['netns', 'exec', this.ns, ...argv], opts);
  }

  spawn(argv: string[], opts: { name?: string; env?: NodeJS.ProcessEnv } = {}): LabProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const p = new LabProcess(`${this.name}:${opts.name ?? argv[0]}`, child);
    this.processes.push(p);
    return p;
  }

  /** Runs a TypeScript/JavaScript file with this Node.js (through tsx) inside the namespace. */
  node(script: string, args: string[] = [], opts: { name?: string; env?: NodeJS.ProcessEnv } = {}): LabProcess {
    return this.spawn([process.execPath, '--import', 'tsx', script, ...args], { name: opts.name ?? script.split('/').pop(), env: opts.env });
  }

  /**
   * Impairs this node's uplink in the outgoing direction: loss (iptables `statistic`,
   * always available), a rate limit (tc tbf) and delay/jitter (tc netem, which needs
   * the kernel's sch_netem; kernels without it get a clear error).
   */
  async netem(o: NetemOptions): Promise<void> {
    if (o.lossPct) {
      await this.exec(['iptables', '-w', '-t', 'mangle', '-A', 'POSTROUTING', '-o', this.uplink, '-m', 'statistic', '--mode', 'random', '--probability', String(o.lossPct / 100), '-j', 'DROP']);
      await this.exec(['ip6tables', '-w', '-t', 'mangle', '-A', 'POSTROUTING', '-o', this.uplink, '-m', 'statistic', '--mode', 'random', '--probability', String(o.lossPct / 100), '-j', 'DROP']);
    }
    if (o.rateMbit) await this.exec(['tc', 'qdisc', 'replace', 'dev', this.uplink, 'root', 'tbf', 'rate', `${o.rateMbit}mbit`, 'burst', '32kb', 'latency', '50ms']);
    if (o.delayMs) {
      const res = await this.exec(['tc', 'qdisc', 'replace', 'dev', this.uplink, 'root', 'netem', 'delay', `${o.delayMs}ms`, ...(o.jitterMs ? [`${o.jitterMs}ms`] : [])], { allowFail: true });
      if (res.code !== 0)
        throw new Error(
          /unknown/i.test(res.stderr) ? `netlab: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM), so link delay is unavailable here` : `netlab: tc netem failed: ${res.stderr.trim()}`,
        );
    }
  }
}

export class Internet {
  readonly ns: string;
  constructor(readonly lab: Netlab) {
    this.ns = `${lab.id}-inet`;
  }
}

export interface RouterOptions {
  upstream: Internet | Router;
  nat: NatKind;
  name?: string;
  /** A carrier router: its LAN is 100.64.k.0/24 (RFC 6598 shared address space). */
  carrier?: boolean;
  /** Give the LAN routed IPv6 (only for routers directly on the internet). */
  ipv6?: boolean;
  /**
   * Run miniupnpd (Debian miniupnpd-iptables) offering the named protocols. NAT-PMP and PCP
   * share UDP 5351 in miniupnpd; a disabled one is dropped by the first payload byte
   * (the version: 0 = NAT-PMP, RFC 6886 §3; 2 = PCP, RFC 6887 §7).
   */
  portmap?: { upnp?: boolean; natpmp?: boolean; pcp?: boolean };
  /**
   * An IPv6-only LAN in front of the IPv4 internet: tayga translates NAT64_PREFIX
   * to IPv4, and unbound answers DNS64 (RFC 6147) at the router's LAN
   * address, including AAAA for ipv4only.arpa (RFC 7050) and for every public lab host
   * as `<name>.lab`. Lab hosts on this LAN get it as their resolver.
   */
  nat64?: boolean;
}

/**
 * A network-specific NAT64 prefix (RFC 6052 §2.2, /96) from the documentation range. The
 * well-known 64:ff9b::/96 cannot be used here: tayga refuses to translate it to
 * non-global IPv4 addresses (RFC 6052 §3.1), and the lab's "internet" is documentation space.
 */
export const NAT64_PREFIX = '2001:db8:64::/96';

export class Router extends Node {
  readonly uplink = 'wan';
  readonly index: number;
  /** Address on the upstream segment: public for internet routers, 100.64.x for homes behind a carrier. */
  wanAddr = '';
  wanAddr6?: string;
  readonly lanPrefix: string;
  readonly lanAddr: string;
  readonly lanAddr6?: string;
  readonly hosts: Host[] = [];
  readonly routers: Router[] = [];

  constructor(
    lab: Netlab,
    index: number,
    readonly opts: RouterOptions,
  ) {
    super(lab, opts.name ?? `r${index}`, `${lab.id}-r${index}`);
    this.index = index;
    this.lanPrefix = opts.carrier ? `100.64.${index}` : `10.${index}.0`;
    this.lanAddr = `${this.lanPrefix}.1`;
    if (opts.ipv6 || opts.nat64) this.lanAddr6 = `2001:db8:${index}::1`;
  }

  get nat(): NatKind {
    return this.opts.nat;
  }

  /**
   * A static port forward (DNAT) from the router's upstream address to a LAN host. It
   * matches packets from the LAN side too (see cgnat.test.ts for what that does).
   */
  async forward(proto: 'udp' | 'tcp', port: number, to: Host, toPort = port): Promise<void> {
    const bin = this.opts.portmap ? 'iptables-legacy' : 'iptables';
    await this.exec([bin, '-w', '-t', 'nat', '-A', 'PREROUTING', '-d', this.wanAddr, '-p', proto, '--dport', String(port), '-j', 'DNAT', '--to-destination', `${to.addr}:${toPort}`]);
  }

  /** The address the internet sees for this router (walks up through carriers). */
  get publicAddr(): string {
    return this.opts.upstream instanceof Router ? this.opts.upstream.publicAddr : this.wanAddr;
  }
}

export interface HostOptions {
  /** The router whose LAN the host sits on; absent = directly on the internet (public). */
  lan?: Router;
  name?: string;
  /** Extra public addresses (second subnet 203.0.113.0/24) for public hosts. */
  secondaryAddr?: boolean;
}

export class Host extends Node {
  readonly uplink = 'eth0';
  addr = '';
  addr6?: string;
  /** For public hosts with `secondaryAddr`: an address in 203.0.113.0/24. */
  addr2?: string;

  constructor(
    lab: Netlab,
    readonly index: number,
    readonly opts: HostOptions,
  ) {
    super(lab, opts.name ?? `h${index}`, `${lab.id}-h${index}`);
  }

  /** The address peers on the internet see: its own if public, else its router's. */
  get publicAddr(): string {
    return this.opts.lan ? this.opts.lan.publicAddr : this.addr;
  }
}

interface RegistryEntry {
  id: string;
  name: string;
  pid: number;
  namespaces: string[];
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills every process in a namespace and deletes it; synchronous so exit handlers can use it. */
function destroyNamespaceSync(ns: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // namespace already gone
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

const live = new Set<Netlab>();
let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const lab of live) lab.downSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      for (const lab of live) lab.downSync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    });
}

export class Netlab {
  private inet?: Internet;
  private readonly routers: Router[] = [];
  private readonly hosts: Host[] = [];
  private publicCount = 0;
  private isUp = false;
  private readonly namespaces: string[] = [];
  private readonly tempDirs: string[] = [];

  private constructor(
    readonly id: string,
    readonly name: string,
  ) {}

  static async create(o: { name: string; id?: string }): Promise<Netlab> {
    requireRoot();
    requireTools(NETLAB_TOOLS);
    Netlab.sweep();
    const id = o.id ?? `${PREFIX}${randomBytes(3).toString('hex')}`;
    hookExit();
    return new Netlab(id, o.name);
  }

  /** Removes labs whose owning process died (a crashed or killed test run). Returns their ids. */
  static sweep(all = false): string[] {
    let files: string[];
    try {
      files = readdirSync(REGISTRY).filter((f) => f.endsWith('.json'));
    } catch {
      return [];
    }
    const swept: string[] = [];
    for (const f of files) {
      const path = join(REGISTRY, f);
      let entry: RegistryEntry;
      try {
        entry = JSON.parse(readFileSync(path, 'utf8')) as RegistryEntry;
      } catch {
        rmSync(path, { force: true });
        continue;
      }
      if (!all && pidAlive(entry.pid)) continue;
      for (const ns of entry.namespaces) destroyNamespaceSync(ns);
      rmSync(path, { force: true });
      swept.push(entry.id);
    }
    return swept;
  }

  internet(): Internet {
    this.inet ??= new Internet(this);
    return this.inet;
  }

  router(o: RouterOptions): Router {
    const r = new Router(this, this.routers.length + 1, o);
    this.routers.push(r);
    if (o.upstream instanceof Router) o.upstream.routers.push(r);
    return r;
  }

  host(o: HostOptions = {}): Host {
    const h = new Host(this, this.hosts.length + 1, o);
    this.hosts.push(h);
    o.lan?.hosts.push(h);
    return h;
  }

  hostNamed(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`netlab: no host named ${name}`);
    return h;
  }

  /** A scratch directory removed with the lab (state dirs, sockets, files to transfer). */
  tempDir(label: string): string {
    const dir = mkdtempSync(join(tmpdir(), `${this.id}-${label}-`));
    this.tempDirs.push(dir);
    return dir;
  }

  /** A host directly on the internet segment (a server, or a node with no NAT). */
  publicHost(o: Omit<HostOptions, 'lan'> = {}): Host {
    return this.host(o);
  }

  private nextPublic(): { v4: string; v4b: string; v6: string } {
    const n = 10 + this.publicCount++;
    return { v4: `198.51.100.${n}`, v4b: `203.0.113.${n}`, v6: `2001:db8::${n.toString(16)}` };
  }

  private async addNs(ns: string, forwarding: boolean): Promise<void> {
    await sh('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    this.register();
    await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const sysctls = ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_ra=0', 'net.ipv6.conf.default.accept_ra=0'];
    if (forwarding) sysctls.push('net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
    await sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...sysctls]);
  }

  private register(): void {
    mkdirSync(REGISTRY, { recursive: true });
    const entry: RegistryEntry = { id: this.id, name: this.name, pid: process.pid, namespaces: this.namespaces };
    writeFileSync(join(REGISTRY, `${this.id}.json`), JSON.stringify(entry));
  }

  /** A veth pair between two namespaces, created directly inside them (no root-namespace names). */
  private async veth(nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
    await sh('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB]);
    await sh('ip', ['-n', nsA, 'link', 'set', ifA, 'up']);
    await sh('ip', ['-n', nsB, 'link', 'set', ifB, 'up']);
  }

  private async bridge(ns: string, br: string): Promise<void> {
    await sh('ip', ['-n', ns, 'link', 'add', br, 'type', 'bridge']);
    await sh('ip', ['-n', ns, 'link', 'set', br, 'up']);
  }

  async up(): Promise<void> {
    if (this.isUp) throw new Error('netlab: already up');
    live.add(this);
    try {
      await this.build();
    } catch (err) {
      await this.down();
      throw err;
    }
    this.isUp = true;
  }

  private async build(): Promise<void> {
    const inet = this.internet();
    await this.addNs(inet.ns, false);
    await this.bridge(inet.ns, 'br0');
    const wired = new Set<Router>();
    const carrierPortmapNets = new Set<Router>();
    let port = 0;
    const attachPublic = async (ns: string, ifname: string, portmap = false) => {
      const p = `p${++port}`;
      await this.veth(inet.ns, p, ns, ifname);
      await sh('ip', ['-n', inet.ns, 'link', 'set', p, 'master', 'br0']);
      const a = this.nextPublic();
      if (portmap) a.v4 = a.v4.replace('198.51.100.', `${PORTMAP_WAN_PREFIX}.`);
      await sh('ip', ['-n', ns, 'addr', 'add', `${a.v4}/24`, 'dev', ifname]);
      for (const subnet of ['198.51.100.0/24', '203.0.113.0/24', `${PORTMAP_WAN_PREFIX}.0/24`])
        if (!a.v4.startsWith(subnet.slice(0, subnet.lastIndexOf('.')))) await sh('ip', ['-n', ns, 'route', 'add', subnet, 'dev', ifname]);
      await sh('ip', ['-n', ns, '-6', 'addr', 'add', `${a.v6}/64`, 'dev', ifname, 'nodad']);
      return a;
    };

    const wireRouter = async (r: Router): Promise<void> => {
      if (wired.has(r)) return;
      const up = r.opts.upstream;
      if (up instanceof Router) await wireRouter(up);
      await this.addNs(r.ns, true);
      if (up instanceof Router) {
        const ifUp = `r${r.index}`;
        await this.veth(up.ns, ifUp, r.ns, 'wan');
        await sh('ip', ['-n', up.ns, 'link', 'set', ifUp, 'master', 'lan0']);
        const upPrefix = r.opts.portmap ? `${PORTMAP_CARRIER_PREFIX}.${up.index}` : up.lanPrefix;
        if (r.opts.portmap && !carrierPortmapNets.has(up)) {
          carrierPortmapNets.add(up);
          await sh('ip', ['-n', up.ns, 'addr', 'add', `${upPrefix}.1/24`, 'dev', 'lan0']);
        }
        r.wanAddr = `${upPrefix}.${100 + r.index}`;
        await sh('ip', ['-n', r.ns, 'addr', 'add', `${r.wanAddr}/24`, 'dev', 'wan']);
        await sh('ip', ['-n', r.ns, 'route', 'add', 'default', 'via', `${upPrefix}.1`]);
      } else {
        const a = await attachPublic(r.ns, 'wan', !!r.opts.portmap);
        r.wanAddr = a.v4;
        r.wanAddr6 = a.v6;
        await sh('ip', ['-n', r.ns, 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'wan', 'onlink']);
        await sh('ip', ['-n', r.ns, '-6', 'route', 'add', 'default', 'via', '2001:db8::1', 'dev', 'wan', 'onlink']);
      }
      await this.bridge(r.ns, 'lan0');
      await sh('ip', ['-n', r.ns, 'addr', 'add', `${r.lanAddr}/24`, 'dev', 'lan0']);
      if (r.lanAddr6) await sh('ip', ['-n', r.ns, '-6', 'addr', 'add', `${r.lanAddr6}/64`, 'dev', 'lan0', 'nodad']);
      await this.applyNat(r);
      wired.add(r);
    };

    for (const r of this.routers) await wireRouter(r);
    for (const h of this.hosts) {
      await this.addNs(h.ns, false);
      const r = h.opts.lan;
      if (!r) {
        const a = await attachPublic(h.ns, 'eth0');
        h.addr = a.v4;
        h.addr6 = a.v6;
        await sh('ip', ['-n', h.ns, 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'eth0', 'onlink']);
        if (h.opts.secondaryAddr) {
          h.addr2 = a.v4b;
          await sh('ip', ['-n', h.ns, 'addr', 'add', `${a.v4b}/24`, 'dev', 'eth0']);
        }
        continue;
      }
      const ifR = `h${h.index}`;
      await this.veth(r.ns, ifR, h.ns, 'eth0');
      await sh('ip', ['-n', r.ns, 'link', 'set', ifR, 'master', 'lan0']);
      if (!r.opts.nat64) {
        h.addr = `${r.lanPrefix}.${10 + r.hosts.indexOf(h)}`;
        await sh('ip', ['-n', h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', 'eth0']);
        await sh('ip', ['-n', h.ns, 'route', 'add', 'default', 'via', r.lanAddr]);
      }
      if (r.lanAddr6) {
        h.addr6 = `2001:db8:${r.index}::${(10 + r.hosts.indexOf(h)).toString(16)}`;
        await sh('ip', ['-n', h.ns, '-6', 'addr', 'add', `${h.addr6}/64`, 'dev', 'eth0', 'nodad']);
        await sh('ip', ['-n', h.ns, '-6', 'route', 'add', 'default', 'via', r.lanAddr6]);
      }
    }
    await this.routeIpv6Lans();
    // Services last: they need every address assigned.
    for (const r of this.routers) if (r.opts.portmap) await this.startMiniupnpd(r);
    for (const r of this.routers) if (r.opts.nat64) await this.startNat64(r);
  }

  /** IPv6 is routed, not NATed: every public namespace learns each IPv6 LAN's next hop. */
  private async routeIpv6Lans(): Promise<void> {
    const v6Routers = this.routers.filter((r) => r.lanAddr6 && r.wanAddr6);
    const publicNs = [...this.routers.filter((r) => r.wanAddr6).map((r) => r), ...this.hosts.filter((h) => !h.opts.lan)];
    for (const r of v6Routers)
      for (const n of publicNs) {
        if (n === r) continue;
        const dev = n instanceof Router ? 'wan' : 'eth0';
        await sh('ip', ['-n', n.ns, '-6', 'route', 'add', `2001:db8:${r.index}::/64`, 'via', r.wanAddr6!, 'dev', dev]);
      }
  }

  private async applyNat(r: Router): Promise<void> {
    // miniupnpd drives the legacy iptables backend (libiptc); keep one backend per router.
    const legacy = r.opts.portmap ? '-legacy' : '';
    const ipt = (...args: string[]) => sh('ip', ['netns', 'exec', r.ns, `iptables${legacy}`, '-w', ...args]);
    const ip6t = (...args: string[]) => sh('ip', ['netns', 'exec', r.ns, `ip6tables${legacy}`, '-w', ...args]);
    if (r.opts.portmap) {
      await ipt('-t', 'nat', '-N', 'MINIUPNPD');
      await ipt('-t', 'nat', '-A', 'PREROUTING', '-i', 'wan', '-j', 'MINIUPNPD');
      await ipt('-t', 'nat', '-N', 'MINIUPNPD-POSTROUTING');
      await ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MINIUPNPD-POSTROUTING');
      await ipt('-N', 'MINIUPNPD');
      await ipt('-A', 'FORWARD', '-i', 'wan', '!', '-o', 'wan', '-j', 'MINIUPNPD');
      const pm = r.opts.portmap;
      const versionByte = '0>>22&0x3C@8>>24';
      if (!pm.natpmp && pm.pcp) await ipt('-A', 'INPUT', '-i', 'lan0', '-p', 'udp', '--dport', '5351', '-m', 'u32', '--u32', `${versionByte}=0`, '-j', 'DROP');
      if (!pm.pcp && pm.natpmp) await ipt('-A', 'INPUT', '-i', 'lan0', '-p', 'udp', '--dport', '5351', '-m', 'u32', '--u32', `${versionByte}=2`, '-j', 'DROP');
    }
    if (r.nat !== 'none') {
      // Like any home router, drop unsolicited traffic to the router itself. Besides being
      // realistic this matters for hole punching: an accepted stray packet would leave a
      // conntrack entry that makes the router's own later outbound mapping to that peer
      // pick a different port (a tuple clash), breaking endpoint-independent mapping.
      await ipt('-A', 'INPUT', '-i', 'wan', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      await ipt('-A', 'INPUT', '-i', 'wan', '-p', 'icmp', '-j', 'ACCEPT');
      await ipt('-A', 'INPUT', '-i', 'wan', '-j', 'DROP');
    }
    switch (r.nat) {
      case 'none':
        return;
      case 'eim':
        // Linux conntrack keeps the source port when it is free: endpoint-independent mapping.
        await ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE');
        break;
      case 'edm':
        // A fresh random source port per connection (per destination): endpoint-dependent mapping.
        await ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE', '--random-fully');
        break;
      case 'udp-blocked':
        await ipt('-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-j', 'MASQUERADE');
        await ipt('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
        await ipt('-A', 'FORWARD', '-i', 'lan0', '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-j', 'ACCEPT');
        await ipt('-A', 'FORWARD', '-i', 'lan0', '-j', 'DROP');
        await ip6t('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
        await ip6t('-A', 'FORWARD', '-i', 'lan0', '-p', 'tcp', '-m', 'multiport', '--dports', '80,443', '-j', 'ACCEPT');
        await ip6t('-A', 'FORWARD', '-i', 'lan0', '-j', 'DROP');
        break;
      default: {
        const never: never = r.nat;
        throw new Error(`netlab: unknown NAT kind ${String(never)}`);
      }
    }
    if (r.lanAddr6) {
      // A stateful IPv6 firewall like a home router's: outbound opens, unsolicited inbound drops.
      await ip6t('-A', 'FORWARD', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      await ip6t('-A', 'FORWARD', '-i', 'lan0', '-j', 'ACCEPT');
      await ip6t('-A', 'FORWARD', '-p', 'ipv6-icmp', '-j', 'ACCEPT');
      await ip6t('-A', 'FORWARD', '-j', 'DROP');
    }
  }

  private async startMiniupnpd(r: Router): Promise<void> {
    requireTools([{ cmd: 'miniupnpd', pkg: 'miniupnpd-iptables' }, { cmd: 'iptables-legacy', pkg: 'iptables' }]);
    const pm = r.opts.portmap!;
    const dir = mkdtempSync(join(tmpdir(), `${this.id}-upnp-`));
    this.tempDirs.push(dir);
    const conf = join(dir, 'miniupnpd.conf');
    writeFileSync(
      conf,
      [
        'ext_ifname=wan',
        'listening_ip=lan0',
        `enable_upnp=${pm.upnp ? 'yes' : 'no'}`,
        `enable_natpmp=${pm.natpmp || pm.pcp ? 'yes' : 'no'}`,
        'secure_mode=yes',
        'system_uptime=no',
        `lease_file=${join(dir, 'leases')}`,
        `uuid=${randomUUID()}`,
        `allow 1024-65535 ${r.lanPrefix}.0/24 1024-65535`,
        'deny 0-65535 0.0.0.0/0 0-65535',
        '',
      ].join('\n'),
    );
    const p = r.spawn(['miniupnpd', '-d', '-f', conf, '-P', join(dir, 'pid')], { name: 'miniupnpd' });
    await p.waitFor(pm.natpmp || pm.pcp ? /Listening for NAT-PMP/ : /HTTP listening/, 10_000);
  }

  private async startNat64(r: Router): Promise<void> {
    requireTools([{ cmd: 'tayga', pkg: 'tayga' }, { cmd: 'unbound', pkg: 'unbound' }]);
    const dir = mkdtempSync(join(tmpdir(), `${this.id}-nat64-`));
    this.tempDirs.push(dir);
    const pool = '192.168.255';
    const tayga = join(dir, 'tayga.conf');
    writeFileSync(
      tayga,
      [
        'tun-device nat64',
        `ipv4-addr ${pool}.1`,
        `ipv6-addr 2001:db8:${r.index}::64`,
        `prefix ${NAT64_PREFIX}`,
        `dynamic-pool ${pool}.0/24`,
        `data-dir ${dir}`,
        '',
      ].join('\n'),
    );
    await r.exec(['tayga', '-c', tayga, '--mktun']);
    await sh('ip', ['-n', r.ns, 'link', 'set', 'nat64', 'up']);
    await sh('ip', ['-n', r.ns, 'route', 'add', `${pool}.0/24`, 'dev', 'nat64']);
    await sh('ip', ['-n', r.ns, '-6', 'route', 'add', NAT64_PREFIX, 'dev', 'nat64']);
    r.spawn(['tayga', '-c', tayga, '--nodetach'], { name: 'tayga' });

    // Two unbounds: an authoritative one with the lab's A records on loopback, and the
    // DNS64 resolver the LAN uses, which looks names up there and synthesizes AAAA.
    const publicHosts = this.hosts.filter((h) => !h.opts.lan);
    const common = ['server:', '  username: ""', '  chroot: ""', `  directory: "${dir}"`, '  use-syslog: no', '  logfile: ""', '  do-not-query-localhost: no', '  do-ip6: yes'];
    const auth = join(dir, 'auth.conf');
    writeFileSync(
      auth,
      [
        ...common,
        `  pidfile: "${dir}/auth.pid"`,
        '  interface: 127.0.0.1@5353',
        '  access-control: 127.0.0.0/8 allow',
        '  local-zone: "ipv4only.arpa." static',
        // RFC 7050 §2.2: the well-known IPv4-only name and its two addresses.
        '  local-data: "ipv4only.arpa. A 192.0.0.170"',
        '  local-data: "ipv4only.arpa. A 192.0.0.171"',
        '  local-zone: "lab." static',
        ...publicHosts.map((h) => `  local-data: "${h.name}.lab. A ${h.addr}"`),
        '',
      ].join('\n'),
    );
    const dns64 = join(dir, 'dns64.conf');
    writeFileSync(
      dns64,
      [
        ...common,
        `  pidfile: "${dir}/dns64.pid"`,
        `  interface: ${r.lanAddr6}`,
        '  access-control: ::/0 allow',
        '  module-config: "dns64 iterator"',
        `  dns64-prefix: ${NAT64_PREFIX}`,
        'stub-zone:',
        '  name: "ipv4only.arpa."',
        '  stub-addr: 127.0.0.1@5353',
        'stub-zone:',
        '  name: "lab."',
        '  stub-addr: 127.0.0.1@5353',
        '',
      ].join('\n'),
    );
    r.spawn(['unbound', '-d', '-c', auth], { name: 'unbound-auth' });
    r.spawn(['unbound', '-d', '-c', dns64], { name: 'unbound-dns64' });
    for (const h of r.hosts) {
      const etc = `/etc/netns/${h.ns}`;
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, 'resolv.conf'), `nameserver ${r.lanAddr6}\n`);
      this.tempDirs.push(etc);
    }
    const deadline = Date.now() + 10_000;
    for (;;) {
      const { stdout } = await r.exec(['ss', '-Hnul'], { allowFail: true });
      if (stdout.includes('127.0.0.1:5353 ') && stdout.includes(`[${r.lanAddr6}]:53 `)) break;
      if (Date.now() > deadline) throw new Error(`netlab: unbound did not start in ${r.name}:\n${this.logs()}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** Every host's and router's process output, for a failing test's report. */
  logs(): string {
    const parts: string[] = [];
    for (const n of [...this.routers, ...this.hosts])
      for (const p of n.processes) parts.push(`----- ${p.name} (${n.ns}) -----\n${p.output.trimEnd()}`);
    return parts.join('\n');
  }

  /** A shell-friendly description: `export NAME_NS=...` lines. */
  describe(): string {
    const lines = [`# netlab ${this.name} (${this.id})`, `export LAB_ID=${this.id}`, `export INET_NS=${this.internet().ns}`];
    const v = (s: string) => s.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    for (const r of this.routers)
      lines.push(
        `# router ${r.name}: nat=${r.nat} wan=${r.wanAddr} lan=${r.lanPrefix}.0/24${r.lanAddr6 ? ` lan6=2001:db8:${r.index}::/64` : ''}`,
        `export ${v(r.name)}_NS=${r.ns} ${v(r.name)}_WAN=${r.wanAddr} ${v(r.name)}_PUBLIC=${r.publicAddr}`,
      );
    for (const h of this.hosts)
      lines.push(
        `# host ${h.name}: ${h.opts.lan ? `behind ${h.opts.lan.name}` : 'public'}`,
        `export ${v(h.name)}_NS=${h.ns} ${v(h.name)}_ADDR=${h.addr}${h.addr6 ? ` ${v(h.name)}_ADDR6=${h.addr6}` : ''}${h.addr2 ? ` ${v(h.name)}_ADDR2=${h.addr2}` : ''} ${v(h.name)}_PUBLIC=${h.publicAddr}`,
      );
    return lines.join('\n');
  }

  async down(): Promise<void> {
    const procs = [...this.routers, ...this.hosts].flatMap((n) => n.processes);
    await Promise.all(procs.map((p) => p.kill('SIGTERM', 1000)));
    this.downSync();
  }

  /** Synchronous teardown (also used from exit handlers): namespaces, their links and processes. */
  downSync(): void {
    for (const ns of [...this.namespaces].reverse()) destroyNamespaceSync(ns);
    this.namespaces.length = 0;
    for (const d of this.tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
    rmSync(join(REGISTRY, `${this.id}.json`), { force: true });
    rmSync(join(REGISTRY, `${this.id}.env`), { force: true });
    live.delete(this);
    this.isUp = false;
  }
}

/** Runs `fn` with a fresh lab inside a node:test test; tears down always, prints logs on failure. */
export async function withLab<T>(name: string, build: (lab: Netlab) => void | Promise<void>, fn: (lab: Netlab) => Promise<T>): Promise<T> {
  const lab = await Netlab.create({ name });
  try {
    await build(lab);
    await lab.up();
    return await fn(lab);
  } catch (err) {
    const logs = lab.logs();
    if (logs) process.stderr.write(`netlab ${name} (${lab.id}) process logs:\n${logs}\n`);
    throw err;
  } finally {
    await lab.down();
  }
}

export function labNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith(PREFIX));
  } catch {
    return [];
  }
}
