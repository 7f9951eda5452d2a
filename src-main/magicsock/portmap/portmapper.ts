// Port mapping for the engine's UDP socket: probes the gateway for PCP, NAT-PMP and UPnP IGD
// in parallel, maps the engine's port (internal port = local port), renews at half the lease
// and deletes the mapping on close. The mapped IP:port becomes one more endpoint candidate.
import { randomBytes } from 'node:crypto';
import { isBogusExternalIPv4 } from './addr.js';
import { PortmapError } from './errors.js';
import { defaultGateway } from './gateway.js';
import { NatPmpClient } from './natpmp.js';
import { PCP_NONCE_LEN, PcpClient } from './pcp.js';
import { UpnpClient } from './upnp.js';

export type PortmapProtocol = 'pcp' | 'natpmp' | 'upnp';

export interface PortMapping {
  protocol: PortmapProtocol;
  external: { address: string; port: number };
  internalPort: number;
  /** Lease granted by the gateway; 0 = permanent (UPnP gateways that refuse finite leases). */
  lifetimeSec: number;
  /** True when the gateway reported an unusable public address (0.0.0.0, RFC 1918, CGNAT ...). */
  suspect: boolean;
}

export interface ProbeResult {
  upnp: boolean;
  natpmp: boolean;
  pcp: boolean;
}

export interface PortmapperOptions {
  /** The engine's UDP port; it is also the internal port of the mapping. */
  localPort: number;
  /** Gateway IPv4 address; default: the default route's gateway from /proc/net/route. */
  gateway?: string;
  /** Requested lease (default 2 h, the RFC 6886 §3.3 recommendation). */
  lifetimeSec?: number;
  timeoutMs?: number;
  description?: string;
  /** Server ports, for tests against fakes (defaults: 5351, 5351, 1900). */
  natpmpPort?: number;
  pcpPort?: number;
  ssdpPort?: number;
  multicast?: boolean;
  /** Called whenever the mapping appears, changes or disappears (null). */
  onChange?: (m: PortMapping | null) => void;
}

/** Renewal never sooner than this (a gateway granting 1 s must not make us spin). */
const MIN_RENEW_MS = 1000;
/** Longest timer we set (setTimeout's 2^31-1 ms limit); huge leases are rechecked daily. */
const MAX_RENEW_MS = 24 * 3600 * 1000;
const DEFAULT_LIFETIME_SEC = 7200;

interface Clients {
  gateway: string;
  pcp: PcpClient;
  natpmp: NatPmpClient;
  upnp: UpnpClient;
}

export class Portmapper {
  private clients: Promise<Clients> | undefined;
  private probed: Promise<ProbeResult> | undefined;
  private mapping: PortMapping | undefined;
  private pcpNonce = randomBytes(PCP_NONCE_LEN);
  private renewTimer: NodeJS.Timeout | undefined;
  private pending: Promise<PortMapping> | undefined;
  /** Every acquire in flight, so close() can wait for them and delete what they got. */
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  private readonly lifetimeSec: number;

  constructor(private readonly opts: PortmapperOptions) {
    this.lifetimeSec = opts.lifetimeSec ?? DEFAULT_LIFETIME_SEC;
  }

  private getClients(): Promise<Clients> {
    this.clients ??= (async () => {
      const gateway = this.opts.gateway ?? (await defaultGateway());
      if (!gateway) throw new PortmapError('no-gateway', 'no default IPv4 gateway found');
      const timeoutMs = this.opts.timeoutMs ?? 2000;
      const c: Clients = {
        gateway,
        pcp: new PcpClient({ gateway, port: this.opts.pcpPort, timeoutMs }),
        natpmp: new NatPmpClient({ gateway, port: this.opts.natpmpPort, timeoutMs }),
        upnp: new UpnpClient({ gateway, ssdpPort: this.opts.ssdpPort, multicast: this.opts.multicast, timeoutMs }),
      };
      if (this.closed) closeClients(c);
      return c;
    })();
    return this.clients;
  }

  /** Which protocols the gateway speaks (for netcheck). Never throws. */
  probe(): Promise<ProbeResult> {
    this.probed ??= this.getClients().then(
      async (c) => {
        const [pcp, natpmp, upnp] = await Promise.allSettled([c.pcp.announce(), c.natpmp.externalAddress(), c.upnp.discover()]);
        return { pcp: pcp.status === 'fulfilled', natpmp: natpmp.status === 'fulfilled', upnp: upnp.status === 'fulfilled' };
      },
      () => ({ pcp: false, natpmp: false, upnp: false }),
    );
    return this.probed;
  }

  current(): PortMapping | undefined {
    return this.mapping;
  }

  /** Gets a mapping (or returns the current one), preferring PCP, then NAT-PMP, then UPnP. */
  createMapping(): Promise<PortMapping> {
    if (this.closed) return Promise.reject(new PortmapError('closed', 'portmapper closed'));
    if (this.mapping) return Promise.resolve(this.mapping);
    this.pending ??= this.acquire(undefined).finally(() => (this.pending = undefined));
    return this.pending;
  }

  /** Tries the protocols in preference order; `prefer` (the one we had) goes first on renewal. */
  private acquire(prefer: PortMapping | undefined): Promise<PortMapping> {
    const p = this.acquireOnce(prefer);
    this.inflight.add(p);
    void p.catch(() => {}).finally(() => this.inflight.delete(p));
    return p;
  }

  private async acquireOnce(prefer: PortMapping | undefined): Promise<PortMapping> {
    const c = await this.getClients();
    const found = await this.probe();
    const order = (['pcp', 'natpmp', 'upnp'] as const).filter((p) => found[p]);
    if (prefer) order.sort((a, b) => Number(b === prefer.protocol) - Number(a === prefer.protocol));
    const errors: string[] = [];
    for (const protocol of order) {
      if (this.closed) break;
      try {
        const m = await this.mapWith(c, protocol, prefer);
        if (this.closed) {
          await this.unmapWith(c, m).catch(() => {});
          break;
        }
        this.install(m);
        return m;
      } catch (e) {
        errors.push(`${protocol}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (this.closed) throw new PortmapError('closed', 'portmapper closed');
    throw new PortmapError('result', errors.length ? `no port mapping: ${errors.join('; ')}` : 'gateway speaks no port-mapping protocol');
  }

  private async mapWith(c: Clients, protocol: PortmapProtocol, prev: PortMapping | undefined): Promise<PortMapping> {
    const internalPort = this.opts.localPort;
    const suggested = prev?.protocol === protocol ? prev.external.port : internalPort;
    const finish = (address: string, port: number, lifetimeSec: number): PortMapping => ({
      protocol,
      external: { address, port },
      internalPort,
      lifetimeSec,
      suspect: isBogusExternalIPv4(address),
    });
    switch (protocol) {
      case 'pcp': {
        const m = await c.pcp.map(internalPort, suggested, this.lifetimeSec, this.pcpNonce);
        return finish(m.externalAddress, m.externalPort, m.lifetimeSec);
      }
      case 'natpmp': {
        const addr = await c.natpmp.externalAddress();
        const m = await c.natpmp.map(internalPort, suggested, this.lifetimeSec);
        return finish(addr.address, m.externalPort, m.lifetimeSec);
      }
      case 'upnp': {
        const m = await c.upnp.map(internalPort, this.lifetimeSec, this.opts.description ?? 'pierce', suggested);
        return finish(await c.upnp.externalAddress(), m.externalPort, m.lifetimeSec);
      }
    }
  }

  private unmapWith(c: Clients, m: PortMapping): Promise<void> {
    switch (m.protocol) {
      case 'pcp':
        return c.pcp.unmap({ nonce: this.pcpNonce, internalPort: m.internalPort });
      case 'natpmp':
        return c.natpmp.unmap(m.internalPort);
      case 'upnp':
        return c.upnp.unmap(m.external.port);
    }
  }

  private install(m: PortMapping): void {
    const changed =
      !this.mapping || this.mapping.external.address !== m.external.address || this.mapping.external.port !== m.external.port || this.mapping.protocol !== m.protocol;
    this.mapping = m;
    this.scheduleRenewal(m);
    if (changed) this.opts.onChange?.(m);
  }

  /** Renew at half the granted lease; a permanent (0) lease is re-asserted at half the requested one. */
  private scheduleRenewal(m: PortMapping): void {
    clearTimeout(this.renewTimer);
    const leaseSec = m.lifetimeSec > 0 ? m.lifetimeSec : this.lifetimeSec;
    const delay = Math.min(MAX_RENEW_MS, Math.max(MIN_RENEW_MS, (leaseSec * 1000) / 2));
    this.renewTimer = setTimeout(() => void this.renew(), delay);
  }

  /** Renews now (also used by the timer). On failure the mapping is dropped and onChange(null) fires. */
  async renew(): Promise<PortMapping | undefined> {
    const prev = this.mapping;
    if (this.closed || !prev) return prev;
    clearTimeout(this.renewTimer);
    try {
      return await this.acquire(prev);
    } catch {
      if (this.closed) return undefined;
      this.mapping = undefined;
      this.opts.onChange?.(null);
      // Try again later: the gateway may come back (reboot) or the network may change.
      this.renewTimer = setTimeout(() => void this.createMapping().catch(() => {}), Math.min(MAX_RENEW_MS, (this.lifetimeSec * 1000) / 2));
      return undefined;
    }
  }

  /** Deletes the mapping (best effort), stops timers and closes every socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.renewTimer);
    // An acquire in flight sees `closed` and deletes whatever it obtained itself.
    await Promise.allSettled([...this.inflight]);
    clearTimeout(this.renewTimer);
    const m = this.mapping;
    this.mapping = undefined;
    if (!this.clients) return;
    const c = await this.clients.catch(() => undefined);
    if (!c) return;
    if (m) await this.unmapWith(c, m).catch(() => {});
    closeClients(c);
  }
}

function closeClients(c: Clients): void {
  c.pcp.close();
  c.natpmp.close();
  c.upnp.close();
}
