/**
 * Real Pierce processes in netlab: a coordination server (with its embedded relay on
 * TCP 443 and STUN on UDP 3478) on an internet host, and `pierce daemon`s with real TUN
 * devices inside host namespaces. The test process drives each daemon through its
 * LocalAPI socket (a file, so reachable across network namespaces) exactly as the CLI does.
 */
import { join } from 'node:path';
import { LocalApiClient } from '../../src-main/engine/localapi-client.js';
import type { PeerStatus, Status } from '../../src-main/protocol/localapi.js';
import type { Host, LabProcess, Netlab } from '../netlab/netlab.js';

export const CLI = new URL('../../src-main/cli/main.ts', import.meta.url).pathname;

export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string, stepMs = 50): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    let v: T | undefined;
    try {
      v = await f();
      if (ok(v)) return v;
    } catch (err) {
      if (Date.now() > end) throw err;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(v)?.slice(0, 600)}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export class LabControl {
  private constructor(
    readonly host: Host,
    readonly url: string,
    readonly adminKey: string,
    readonly proc: LabProcess,
    readonly dataDir: string,
  ) {}

  static async start(lab: Netlab, host: Host, dataDir = lab.tempDir('control')): Promise<LabControl> {
    const alt = host.addr2 ? ['--public-host-alt', host.addr2] : [];
    const proc = host.node(CLI, ['control', 'serve', '--data-dir', dataDir, '--listen', '0.0.0.0:443', '--public-host', host.addr, ...alt], { name: 'control' });
    await proc.waitFor(/control server listening/);
    const { readFileSync } = await import('node:fs');
    const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
    return new LabControl(host, `http://${host.addr}:443`, adminKey, proc, dataDir);
  }

  /** Restarts the server process on the same data dir (keys, nodes, policy survive). */
  async restart(lab: Netlab): Promise<LabControl> {
    await this.stop();
    return LabControl.start(lab, this.host, this.dataDir);
  }

  async stop(): Promise<void> {
    await this.proc.kill('SIGTERM');
  }

  /** The admin API, called from inside the control host's namespace. */
  async admin<T>(method: string, path: string, body?: unknown): Promise<T> {
    const code = `const r = await fetch(process.argv[1], { method: process.argv[2], headers: { authorization: 'Bearer ' + process.env.PIERCE_ADMIN_KEY }, body: process.argv[3] || undefined });
const j = await r.json(); if (!r.ok) { process.stderr.write(j.error ?? String(r.status)); process.exit(1); } process.stdout.write(JSON.stringify(j));`;
    const payload = body === undefined ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    const res = await this.host.exec([process.execPath, '--input-type=module', '-e', code, `${this.url}${path}`, method, payload], { env: { ...process.env, PIERCE_ADMIN_KEY: this.adminKey }, allowFail: true });
    if (res.code !== 0) throw new Error(`admin ${method} ${path}: ${res.stderr.trim()}`);
    return JSON.parse(res.stdout) as T;
  }

  async preauthKey(user: string, o: { tags?: string[]; reusable?: boolean } = {}): Promise<string> {
    return (await this.admin<{ key: string }>('POST', '/api/preauthkeys', { user, ...o })).key;
  }
}

export class LabNode {
  readonly api: LocalApiClient;
  private constructor(
    readonly host: Host,
    readonly name: string,
    readonly proc: LabProcess,
    readonly stateDir: string,
    readonly socket: string,
  ) {
    this.api = new LocalApiClient(socket);
  }

  static async start(lab: Netlab, host: Host, name: string, stateDir = lab.tempDir(`node-${name}`)): Promise<LabNode> {
    const socket = join(stateDir, 'pierced.sock');
    const proc = host.node(CLI, ['daemon', '--state-dir', stateDir, '--socket', socket, '--tun', 'pierce0'], { name: `pierced-${name}` });
    await proc.waitFor(/LocalAPI on/);
    return new LabNode(host, name, proc, stateDir, socket);
  }

  async restart(lab: Netlab): Promise<LabNode> {
    await this.proc.kill('SIGTERM');
    return LabNode.start(lab, this.host, this.name, this.stateDir);
  }

  /** Joins; `controlUrl` overrides the control server's IPv4 URL (an IPv6-only host uses its DNS64 name). */
  async up(control: LabControl, authKey: string, tags?: string[], controlUrl = control.url): Promise<Status> {
    await this.api.up({ controlUrl, authKey, hostname: this.name, advertiseTags: tags });
    return this.api.status();
  }

  status(): Promise<Status> {
    return this.api.status();
  }

  async peer(name: string): Promise<PeerStatus> {
    const p = (await this.status()).peers.find((x) => x.name === name);
    if (!p) throw new Error(`${this.name}: no peer ${name}`);
    return p;
  }

  /** This node's tailnet IPv4. */
  async ip(): Promise<string> {
    const s = await this.status();
    if (!s.self) throw new Error(`${this.name}: not up (${s.backendState}; ${s.health.join('; ')})`);
    return s.self.addresses[0];
  }

  /** One ICMP echo through the tunnel; true when the reply came back within `waitS`. */
  async ping(ip: string, waitS = 5): Promise<boolean> {
    return (await this.host.exec(['ping', '-n', '-c', '1', '-W', String(waitS), ip], { allowFail: true, timeoutMs: (waitS + 5) * 1000 })).code === 0;
  }
}
