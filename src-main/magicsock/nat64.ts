/**
 * NAT64 for IPv6-only networks, done in the engine (what a CLAT would do for the OS):
 * learn the NAT64 prefix from DNS64 (RFC 7050), then write IPv4 endpoints, STUN servers
 * and relay addresses as IPv4-embedded IPv6 addresses under that prefix (RFC 6052) so
 * they are reachable through the network's NAT64 translator.
 */
import { Resolver } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import type { DerpMap } from '../protocol/derpmap.js';
import { joinEndpoint, splitEndpoint } from './disco.js';
import { formatIPv6, parseIPv6 } from './ip6.js';

/** RFC 7050 §2.2: the IPv4-only name and its two well-known addresses (WKAs). */
export const IPV4ONLY_ARPA = 'ipv4only.arpa';
export const WELL_KNOWN_IPV4 = ['192.0.0.170', '192.0.0.171'] as const;
/** RFC 6052 §2.2: the prefix lengths an IPv4-embedded IPv6 address may use. */
export const NAT64_PREFIX_LENGTHS = [32, 40, 48, 56, 64, 96] as const;
export type Nat64PrefixLength = (typeof NAT64_PREFIX_LENGTHS)[number];
/** RFC 6052 §2.1: the well-known prefix (only for global IPv4 destinations, §3.1). */
export const WELL_KNOWN_NAT64_PREFIX = '64:ff9b::/96';
/** RFC 6052 §2.2: bits 64..71 of every IPv4-embedded address (the "u" octet) are zero. */
const U_OCTET = 8;

export interface Nat64Prefix {
  /** 16 bytes; bits past `length` are zero. */
  bytes: Uint8Array;
  length: Nat64PrefixLength;
}

export class Nat64Error extends Error {
  override readonly name = 'Nat64Error';
}

function isPrefixLength(n: number): n is Nat64PrefixLength {
  return (NAT64_PREFIX_LENGTHS as readonly number[]).includes(n);
}

/** Byte offsets of the four IPv4 octets for a prefix length: after the prefix, skipping the u octet. */
function ipv4Offsets(length: Nat64PrefixLength): number[] {
  const out: number[] = [];
  for (let i = length / 8; out.length < 4; i++) if (i !== U_OCTET) out.push(i);
  return out;
}

function ipv4Bytes(ip: string): number[] {
  if (!isIPv4(ip)) throw new Nat64Error(`not an IPv4 address: ${ip}`);
  return ip.split('.').map(Number);
}

/** "2001:db8:64::/96" → prefix. Rejects lengths RFC 6052 does not define and a non-zero u octet. */
export function parseNat64Prefix(text: string): Nat64Prefix {
  const slash = text.lastIndexOf('/');
  const addr = slash >= 0 ? text.slice(0, slash) : '';
  const length = Number(text.slice(slash + 1));
  if (slash < 0 || !isIPv6(addr) || !isPrefixLength(length)) throw new Nat64Error(`not a NAT64 prefix (ipv6/32|40|48|56|64|96): ${text}`);
  const bytes = new Uint8Array(parseIPv6(addr));
  if (bytes.subarray(length / 8).some((b) => b !== 0)) throw new Nat64Error(`${text}: bits past the prefix length are set`);
  if (bytes[U_OCTET] !== 0) throw new Nat64Error(`${text}: bits 64..71 must be zero (RFC 6052 §2.2)`);
  return { bytes, length };
}

export function formatNat64Prefix(p: Nat64Prefix): string {
  return `${formatIPv6(p.bytes)}/${p.length}`;
}

/** RFC 6052 §2.2: the IPv4-embedded IPv6 address of `ipv4` under `prefix` (suffix zero). */
export function synthesizeIPv6(prefix: Nat64Prefix, ipv4: string): string {
  const v4 = ipv4Bytes(ipv4);
  const out = new Uint8Array(16);
  out.set(prefix.bytes.subarray(0, prefix.length / 8));
  ipv4Offsets(prefix.length).forEach((off, i) => (out[off] = v4[i]));
  return formatIPv6(out);
}

/** RFC 6052 §2.3: the IPv4 address embedded in `ipv6` if it lies under `prefix`, else undefined. */
export function extractIPv4(prefix: Nat64Prefix, ipv6: string): string | undefined {
  if (!isIPv6(ipv6)) return undefined;
  const b = parseIPv6(ipv6);
  const n = prefix.length / 8;
  for (let i = 0; i < n; i++) if (b[i] !== prefix.bytes[i]) return undefined;
  return ipv4Offsets(prefix.length)
    .map((off) => b[off])
    .join('.');
}

function prefixOf(addr: Uint8Array, length: Nat64PrefixLength): Nat64Prefix {
  const bytes = new Uint8Array(16);
  bytes.set(addr.subarray(0, length / 8));
  return { bytes, length };
}

/** Every prefix length at which `wka` sits in `addr` with a zero u octet. */
function wkaLengths(addr: Uint8Array, wka: string): Nat64PrefixLength[] {
  const v4 = ipv4Bytes(wka);
  if (addr[U_OCTET] !== 0) return [];
  return NAT64_PREFIX_LENGTHS.filter((len) => ipv4Offsets(len).every((off, i) => addr[off] === v4[i]));
}

const prefixKey = (p: Nat64Prefix) => `${formatIPv6(p.bytes)}/${p.length}`;

/**
 * RFC 7050 §3: the NAT64 prefixes in an AAAA answer for ipv4only.arpa, found by locating
 * a well-known IPv4 address at one of the RFC 6052 §2.2 positions. A DNS64 synthesizes
 * one record per WKA, so a real prefix embeds both 192.0.0.170 and 192.0.0.171 across the
 * answer; a prefix whose bytes merely happen to contain a WKA pattern embeds only one
 * (the same one) at the other position. Prefixes seen with both WKAs win; with only one
 * WKA in the answer, a record is used only if it holds the WKA at exactly one position.
 * Native AAAA records give nothing. Order follows the answer (the first is the one to use).
 */
export function prefixesFromAnswer(aaaa: readonly string[]): Nat64Prefix[] {
  const seen = new Map<string, { prefix: Nat64Prefix; wkas: Set<string>; unambiguous: boolean }>();
  for (const text of aaaa) {
    if (!isIPv6(text)) continue;
    const a = new Uint8Array(parseIPv6(text));
    const hits = WELL_KNOWN_IPV4.flatMap((wka) => wkaLengths(a, wka).map((len) => ({ wka, prefix: prefixOf(a, len) })));
    for (const h of hits) {
      const key = prefixKey(h.prefix);
      const entry = seen.get(key) ?? { prefix: h.prefix, wkas: new Set<string>(), unambiguous: false };
      entry.wkas.add(h.wka);
      entry.unambiguous ||= hits.length === 1;
      seen.set(key, entry);
    }
  }
  const all = [...seen.values()];
  const confirmed = all.filter((e) => e.wkas.size === WELL_KNOWN_IPV4.length);
  return (confirmed.length ? confirmed : all.filter((e) => e.unambiguous)).map((e) => e.prefix);
}

export interface DiscoverOptions {
  /** DNS servers ("ip" or "ip:port"); default: the system's (/etc/resolv.conf). */
  servers?: string[];
  /** First attempt's timeout (c-ares waits longer on the retry: the default 500 ms gives up after ~2 s). */
  timeoutMs?: number;
  /** For tests: answer AAAA queries without DNS. */
  resolve6?: (name: string) => Promise<string[]>;
}

/**
 * RFC 7050 §3: ask the network's resolver for AAAA ipv4only.arpa. A DNS64 resolver
 * synthesizes them from the name's A records; any other resolver has none. Resolves to
 * the learned prefixes (preferred first), or [] when the network has no DNS64.
 */
export async function discoverNat64Prefixes(o: DiscoverOptions = {}): Promise<Nat64Prefix[]> {
  let resolve6 = o.resolve6;
  let resolver: Resolver | undefined;
  if (!resolve6) {
    resolver = new Resolver({ timeout: o.timeoutMs ?? 500, tries: 2 });
    if (o.servers) resolver.setServers(o.servers);
    const r = resolver;
    resolve6 = (name) => r.resolve6(name);
  }
  try {
    return prefixesFromAnswer(await resolve6(IPV4ONLY_ARPA));
  } catch {
    // NXDOMAIN / NODATA / timeout: no DNS64 here.
    return [];
  } finally {
    resolver?.cancel();
  }
}

/** "ip:port" → the same endpoint through NAT64 when it is IPv4; IPv6 endpoints pass unchanged. */
export function toNat64Endpoint(prefix: Nat64Prefix, endpoint: string): string {
  const { host, port } = splitEndpoint(endpoint);
  return isIPv4(host) ? joinEndpoint(synthesizeIPv6(prefix, host), port) : endpoint;
}

/** Candidates or STUN servers ("ip:port") rewritten for an IPv6-only network; order kept, duplicates dropped. */
export function mapEndpointsToNat64(prefix: Nat64Prefix, endpoints: readonly string[]): string[] {
  return [...new Set(endpoints.map((e) => toNat64Endpoint(prefix, e)))];
}

/** `endpoint` (as received) back in its IPv4 form when it came through the prefix; else unchanged. */
export function fromNat64Endpoint(prefix: Nat64Prefix, endpoint: string): string {
  const { host, port } = splitEndpoint(endpoint);
  const v4 = isIPv6(host) ? extractIPv4(prefix, host) : undefined;
  return v4 ? joinEndpoint(v4, port) : endpoint;
}

/**
 * The relay map for an IPv6-only network: relay nodes known only by an IPv4 literal get
 * the synthesized IPv6 address (so STUN and DERP go through NAT64). Nodes with their own
 * IPv6 keep it; nodes known only by hostname are left to DNS64.
 */
export function nat64DerpMap(prefix: Nat64Prefix, map: DerpMap): DerpMap {
  const regions: DerpMap['regions'] = {};
  for (const [id, r] of Object.entries(map.regions))
    regions[Number(id)] = {
      ...r,
      nodes: r.nodes.map((n) => {
        const v4 = n.ipv4 ?? (isIPv4(n.hostName) ? n.hostName : undefined);
        return n.ipv6 || !v4 ? n : { ...n, ipv6: synthesizeIPv6(prefix, v4) };
      }),
    };
  return { ...map, regions };
}
