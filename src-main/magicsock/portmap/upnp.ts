// UPnP IGD client: SSDP discovery, device description, and the WANIPConnection SOAP actions
// we need (AddAnyPortMapping / AddPortMapping, GetExternalIPAddress, DeletePortMapping).
// References: UPnP Device Architecture 1.1 §1.3 (SSDP M-SEARCH), UPnP IGD:2
// WANIPConnection:2 Service §2.4 (actions) and §2.5 (error codes).
import dgram from 'node:dgram';
import { localAddressToward } from './addr.js';
import { PortmapError } from './errors.js';
import { httpFetch } from './http-fetch.js';
import { assertNoDtd, elements, escapeXml, text } from './xml.js';

/** UDA 1.1 §1.3.2: SSDP multicast group and port. */
export const SSDP_MULTICAST = '239.255.255.250';
export const SSDP_PORT = 1900;
/** The multicast search goes out only if the unicast one to the gateway got no answer by then. */
const MULTICAST_AFTER_MS = 300;
/** Caps on what a gateway may send us. */
const MAX_SSDP_REPLY = 2048;
const MAX_HTTP_BYTES = 64 * 1024;

export const WANIP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
export const WANIP1 = 'urn:schemas-upnp-org:service:WANIPConnection:1';
export const WANPPP1 = 'urn:schemas-upnp-org:service:WANPPPConnection:1';
/** Preference order: IGD:2 (AddAnyPortMapping lets the gateway pick a free port) first. */
const SERVICE_PREFERENCE = [WANIP2, WANIP1, WANPPP1];

/** WANIPConnection:2 §2.5 error codes we react to. */
export const UPNP_CONFLICT_IN_MAPPING_ENTRY = 718;
export const UPNP_ONLY_PERMANENT_LEASES_SUPPORTED = 725;

export interface UpnpService {
  serviceType: string;
  controlUrl: URL;
}

export interface UpnpMapping {
  externalPort: number;
  internalPort: number;
  /** 0 = permanent (the gateway only supports permanent leases). */
  lifetimeSec: number;
}

export function encodeMSearch(searchTarget: string): Buffer {
  return Buffer.from(
    `M-SEARCH * HTTP/1.1\r\nHOST: ${SSDP_MULTICAST}:${SSDP_PORT}\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: ${searchTarget}\r\n\r\n`,
  );
}

/** Returns the LOCATION header of an SSDP search response, or undefined if it is not one. */
export function parseSsdpResponse(msg: Buffer): string | undefined {
  if (msg.length > MAX_SSDP_REPLY) return undefined;
  const lines = msg.toString('latin1').split('\r\n');
  if (!/^HTTP\/1\.[01] 200\b/.test(lines[0] ?? '')) return undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === 'location') return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** Finds the preferred WAN connection service and resolves its control URL. */
export function parseDeviceDescription(xml: string, location: URL): UpnpService {
  assertNoDtd(xml);
  const base = text(xml, 'URLBase');
  const services = elements(xml, 'service').map((s) => ({ type: text(s, 'serviceType'), control: text(s, 'controlURL') }));
  for (const wanted of SERVICE_PREFERENCE) {
    const svc = services.find((s) => s.type === wanted && s.control);
    if (!svc?.control) continue;
    try {
      return { serviceType: wanted, controlUrl: new URL(svc.control, base ? new URL(base, location) : location) };
    } catch {
      throw new PortmapError('malformed', `invalid controlURL in device description`);
    }
  }
  throw new PortmapError('malformed', 'device description has no WANIPConnection/WANPPPConnection service');
}

export function encodeSoapRequest(serviceType: string, action: string, args: Record<string, string | number>): string {
  const inner = Object.entries(args)
    .map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`)
    .join('');
  return (
    '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${serviceType}">${inner}</u:${action}></s:Body></s:Envelope>`
  );
}

/** Parses a SOAP reply: the action's response element, or a typed error for a UPnPError fault. */
export function parseSoapResponse(status: number, xml: string, action: string): string {
  assertNoDtd(xml);
  if (status === 200) {
    const resp = elements(xml, `${action}Response`)[0];
    if (resp === undefined) throw new PortmapError('malformed', `SOAP reply lacks ${action}Response`);
    return resp;
  }
  const code = Number(text(xml, 'errorCode'));
  if (status === 500 && Number.isInteger(code)) {
    const desc = (text(xml, 'errorDescription') ?? '').slice(0, 200);
    throw new PortmapError('soap', `UPnP ${action} failed: ${code} ${desc}`, code);
  }
  throw new PortmapError('http', `UPnP ${action}: HTTP status ${status}`);
}

export interface UpnpClientOptions {
  gateway: string;
  /** SSDP port on the gateway (1900; tests point it elsewhere). */
  ssdpPort?: number;
  /** Also search by multicast when the gateway does not answer unicast (default true). */
  multicast?: boolean;
  timeoutMs?: number;
}

export class UpnpClient {
  private service: Promise<UpnpService> | undefined;
  private closed = false;
  private readonly abort = new Set<() => void>();
  private readonly timeoutMs: number;

  constructor(readonly opts: UpnpClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? 2000;
  }

  /** SSDP search, then the device description; cached after the first success. */
  discover(): Promise<UpnpService> {
    if (!this.service) {
      this.service = this.search().then((loc) => this.describe(loc));
      this.service.catch(() => (this.service = undefined));
    }
    return this.service;
  }

  private search(): Promise<URL> {
    if (this.closed) return Promise.reject(new PortmapError('closed', 'UPnP client closed'));
    const { gateway } = this.opts;
    const port = this.opts.ssdpPort ?? SSDP_PORT;
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket('udp4');
      const msg = encodeMSearch('urn:schemas-upnp-org:device:InternetGatewayDevice:1');
      let multicastTimer: NodeJS.Timeout | undefined;
      const finish = (err: Error | undefined, url?: URL) => {
        clearTimeout(deadline);
        clearTimeout(multicastTimer);
        this.abort.delete(cancel);
        socket.close();
        if (err) reject(err);
        else resolve(url as URL);
      };
      const cancel = () => finish(new PortmapError('closed', 'UPnP client closed'));
      this.abort.add(cancel);
      const deadline = setTimeout(() => finish(new PortmapError('timeout', `no SSDP answer from ${gateway} within ${this.timeoutMs} ms`)), this.timeoutMs);
      socket.on('error', () => {});
      socket.on('message', (m, rinfo) => {
        // Only the gateway may answer: a LOCATION from anyone else could point us anywhere.
        if (rinfo.address !== gateway) return;
        const loc = parseSsdpResponse(m);
        if (loc === undefined) return;
        try {
          finish(undefined, new URL(loc));
        } catch {
          finish(new PortmapError('malformed', 'SSDP LOCATION is not a URL'));
        }
      });
      socket.bind(0, () => {
        socket.send(msg, port, gateway, () => {});
        if (this.opts.multicast ?? true) {
          multicastTimer = setTimeout(() => socket.send(msg, port, SSDP_MULTICAST, () => {}), MULTICAST_AFTER_MS);
        }
      });
    });
  }

  private async describe(location: URL): Promise<UpnpService> {
    const r = await httpFetch(location, { timeoutMs: this.timeoutMs, maxBytes: MAX_HTTP_BYTES, allowedHost: this.opts.gateway });
    if (r.status !== 200) throw new PortmapError('http', `device description: HTTP status ${r.status}`);
    return parseDeviceDescription(r.body, r.url);
  }

  private async soap(action: string, args: Record<string, string | number>): Promise<string> {
    if (this.closed) throw new PortmapError('closed', 'UPnP client closed');
    const svc = await this.discover();
    const r = await httpFetch(svc.controlUrl, {
      method: 'POST',
      headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${svc.serviceType}#${action}"` },
      body: encodeSoapRequest(svc.serviceType, action, args),
      timeoutMs: this.timeoutMs,
      maxBytes: MAX_HTTP_BYTES,
      allowedHost: this.opts.gateway,
    });
    return parseSoapResponse(r.status, r.body, action);
  }

  async externalAddress(): Promise<string> {
    const resp = await this.soap('GetExternalIPAddress', {});
    const ip = text(resp, 'NewExternalIPAddress');
    if (ip === undefined) throw new PortmapError('malformed', 'GetExternalIPAddress reply lacks NewExternalIPAddress');
    return ip;
  }

  /**
   * Maps UDP `externalPort` (a suggestion on IGD:2) to our LAN address and `internalPort`.
   * Quirk: gateways that answer 725 OnlyPermanentLeasesSupported get a lease of 0 (permanent);
   * the caller must then delete the mapping itself when done.
   */
  async map(internalPort: number, lifetimeSec: number, description: string, externalPort = internalPort): Promise<UpnpMapping> {
    const svc = await this.discover();
    const client = await localAddressToward(this.opts.gateway, svc.controlUrl.port ? Number(svc.controlUrl.port) : 80);
    const attempt = async (lease: number): Promise<UpnpMapping> => {
      const args = {
        NewRemoteHost: '',
        NewExternalPort: externalPort,
        NewProtocol: 'UDP',
        NewInternalPort: internalPort,
        NewInternalClient: client,
        NewEnabled: 1,
        NewPortMappingDescription: description,
        NewLeaseDuration: lease,
      };
      if (svc.serviceType === WANIP2) {
        const resp = await this.soap('AddAnyPortMapping', args);
        const reserved = Number(text(resp, 'NewReservedPort'));
        if (!Number.isInteger(reserved) || reserved < 1 || reserved > 65535) {
          throw new PortmapError('malformed', 'AddAnyPortMapping reply has no valid NewReservedPort');
        }
        return { externalPort: reserved, internalPort, lifetimeSec: lease };
      }
      await this.soap('AddPortMapping', args);
      return { externalPort, internalPort, lifetimeSec: lease };
    };
    try {
      return await attempt(lifetimeSec);
    } catch (e) {
      if (e instanceof PortmapError && e.resultCode === UPNP_ONLY_PERMANENT_LEASES_SUPPORTED && lifetimeSec !== 0) return attempt(0);
      throw e;
    }
  }

  async unmap(externalPort: number): Promise<void> {
    await this.soap('DeletePortMapping', { NewRemoteHost: '', NewExternalPort: externalPort, NewProtocol: 'UDP' });
  }

  close(): void {
    this.closed = true;
    for (const cancel of [...this.abort]) cancel();
  }
}
