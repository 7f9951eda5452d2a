/**
 * Parser for standard wg-quick(8) configuration files: an [Interface] section (PrivateKey,
 * Address, ListenPort, MTU, DNS) and [Peer] sections (PublicKey, PresharedKey, AllowedIPs,
 * Endpoint, PersistentKeepalive). Keys are case-insensitive as in wg(8); list values are
 * comma-separated and may repeat. wg-quick's shell hooks and routing knobs (PostUp, Table, ...)
 * are ignored with a warning, since running them would execute arbitrary commands. Every error
 * names the line.
 */
import { isIP } from 'node:net';
import { keyFromBase64 } from '../protocol/keys.js';
import type { PeerConfig } from './device.js';

export interface WgQuickConfig {
  privateKey: Uint8Array;
  addresses: string[];
  listenPort?: number;
  mtu?: number;
  /** Parsed but not applied (Pierce does not manage resolv.conf in this mode). */
  dns: string[];
  peers: PeerConfig[];
  warnings: string[];
}

export class WgConfigError extends Error {
  constructor(
    readonly line: number,
    problem: string,
  ) {
    super(line > 0 ? `line ${line}: ${problem}` : problem);
    this.name = 'WgConfigError';
  }
}

/** wg-quick keys Pierce accepts but does not act on. */
const IGNORED = new Set(['table', 'preup', 'postup', 'predown', 'postdown', 'saveconfig', 'fwmark']);
const MAX_PORT = 65535;
// Linux rejects larger MTUs on TUN; 68 is the IPv4 minimum (RFC 791).
const MIN_MTU = 68;
const MAX_MTU = 65535;
// wg(8): persistent keepalive is 1..65535 seconds, or "off"/0.
const MAX_KEEPALIVE = 65535;

function parseCidrText(v: string, line: number, hostOk: boolean): string {
  const [addr, len, extra] = v.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) throw new WgConfigError(line, `"${v}" is not an IP address or CIDR`);
  if (len === undefined) {
    if (!hostOk) throw new WgConfigError(line, `"${v}" needs a prefix length (e.g. ${addr}/${family === 4 ? 32 : 128})`);
    return `${addr}/${family === 4 ? 32 : 128}`;
  }
  if (!/^\d{1,3}$/.test(len) || Number(len) > (family === 4 ? 32 : 128)) throw new WgConfigError(line, `bad prefix length in "${v}"`);
  return `${addr}/${Number(len)}`;
}

function parseInt(v: string, line: number, what: string, min: number, max: number): number {
  if (!/^\d{1,6}$/.test(v) || Number(v) < min || Number(v) > max) throw new WgConfigError(line, `${what} must be an integer in ${min}..${max}, got "${v}"`);
  return Number(v);
}

function parseKey(v: string, line: number, what: string): Uint8Array {
  try {
    return keyFromBase64(v);
  } catch (err) {
    throw new WgConfigError(line, `${what}: ${(err as Error).message}`);
  }
}

function parseEndpoint(v: string, line: number): string {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(v);
  if (!m || (m[1] !== undefined && isIP(m[1]) !== 6) || Number(m[3]) < 1 || Number(m[3]) > MAX_PORT) {
    throw new WgConfigError(line, `Endpoint must be "host:port" or "[ipv6]:port", got "${v}"`);
  }
  return v;
}

const list = (v: string) => v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);

export function parseWgQuick(text: string): WgQuickConfig {
  let section: 'none' | 'interface' | 'peer' = 'none';
  let sawInterface = false;
  let privateKey: Uint8Array | undefined;
  const cfg: Omit<WgQuickConfig, 'privateKey'> = { addresses: [], dns: [], peers: [], warnings: [] };
  let peer: (PeerConfig & { line: number; hasKey: boolean }) | undefined;
  const seen = new Set<string>();
  const peerKeys = new Set<string>();
  const finishPeer = () => {
    if (!peer) return;
    if (!peer.hasKey) throw new WgConfigError(peer.line, '[Peer] has no PublicKey');
    const { line, hasKey: _h, ...pc } = peer;
    const id = Buffer.from(pc.publicKey).toString('base64');
    if (peerKeys.has(id)) throw new WgConfigError(line, `peer ${id} appears twice`);
    peerKeys.add(id);
    cfg.peers.push(pc);
    peer = undefined;
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const hash = lines[i].indexOf('#');
    const raw = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).trim();
    if (raw === '') continue;
    const header = /^\[(\w+)\]$/.exec(raw);
    if (header) {
      const name = header[1].toLowerCase();
      finishPeer();
      seen.clear();
      if (name === 'interface') {
        if (sawInterface) throw new WgConfigError(n, 'a second [Interface] section');
        sawInterface = true;
        section = 'interface';
      } else if (name === 'peer') {
        section = 'peer';
        peer = { publicKey: new Uint8Array(32), allowedIps: [], line: n, hasKey: false };
      } else {
        throw new WgConfigError(n, `unknown section [${header[1]}] (expected [Interface] or [Peer])`);
      }
      continue;
    }
    const eq = raw.indexOf('=');
    if (eq <= 0) throw new WgConfigError(n, `expected "Key = Value" or a [Section], got "${raw}"`);
    const key = raw.slice(0, eq).trim();
    const k = key.toLowerCase();
    const v = raw.slice(eq + 1).trim();
    if (section === 'none') throw new WgConfigError(n, `"${key}" outside of an [Interface] or [Peer] section`);
    const listKey = k === 'address' || k === 'dns' || k === 'allowedips';
    if (!listKey && seen.has(k)) throw new WgConfigError(n, `${key} given twice in one section`);
    seen.add(k);
    if (IGNORED.has(k)) {
      cfg.warnings.push(`line ${n}: ${key} is not supported by Pierce and is ignored`);
      continue;
    }
    if (section === 'interface') {
      switch (k) {
        case 'privatekey':
          privateKey = parseKey(v, n, 'PrivateKey');
          break;
        case 'address':
          for (const a of list(v)) cfg.addresses.push(parseCidrText(a, n, true));
          break;
        case 'listenport':
          cfg.listenPort = parseInt(v, n, 'ListenPort', 0, MAX_PORT);
          break;
        case 'mtu':
          cfg.mtu = parseInt(v, n, 'MTU', MIN_MTU, MAX_MTU);
          break;
        case 'dns':
          cfg.dns.push(...list(v));
          cfg.warnings.push(`line ${n}: DNS is ignored (Pierce does not change the system resolver in wg mode)`);
          break;
        default:
          throw new WgConfigError(n, `unknown [Interface] key "${key}"`);
      }
    } else if (peer) {
      switch (k) {
        case 'publickey':
          peer.publicKey = parseKey(v, n, 'PublicKey');
          peer.hasKey = true;
          break;
        case 'presharedkey':
          peer.presharedKey = parseKey(v, n, 'PresharedKey');
          break;
        case 'allowedips':
          for (const a of list(v)) peer.allowedIps.push(parseCidrText(a, n, true));
          break;
        case 'endpoint':
          peer.endpoint = parseEndpoint(v, n);
          break;
        case 'persistentkeepalive':
          peer.persistentKeepalive = v.toLowerCase() === 'off' ? 0 : parseInt(v, n, 'PersistentKeepalive', 0, MAX_KEEPALIVE);
          break;
        default:
          throw new WgConfigError(n, `unknown [Peer] key "${key}"`);
      }
    }
  }
  finishPeer();
  if (!sawInterface) throw new WgConfigError(0, 'no [Interface] section');
  if (!privateKey) throw new WgConfigError(0, '[Interface] has no PrivateKey');
  return { privateKey, ...cfg };
}
