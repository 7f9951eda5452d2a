/**
 * A stateless, defensive reader of the IP header fields the packet filter needs.
 * IPv4 per RFC 791 §3.1, IPv6 per RFC 8200 §3 (extension headers walked per §4).
 * Never throws: malformed packets yield undefined.
 */

export interface PacketInfo {
  version: 4 | 6;
  src: Uint8Array;
  dst: Uint8Array;
  /** IP protocol number of the transport header (after IPv6 extension headers). */
  proto: number;
  sport: number;
  dport: number;
  /** TCP flags byte, 0 for other protocols. */
  tcpFlags: number;
  /** ICMP/ICMPv6 type, -1 for other protocols. */
  icmpType: number;
  /** Not the first fragment: no transport header to read. */
  fragment: boolean;
}

const IPV6_EXTENSION_HEADERS = new Set([0, 43, 60, 51]); // hop-by-hop, routing, destination options, AH
const IPV6_FRAGMENT = 44;
const MAX_EXTENSION_HEADERS = 8;

function transport(buf: Uint8Array, off: number, proto: number, info: Omit<PacketInfo, 'sport' | 'dport' | 'tcpFlags' | 'icmpType'>): PacketInfo | undefined {
  const out: PacketInfo = { ...info, sport: 0, dport: 0, tcpFlags: 0, icmpType: -1 };
  if (info.fragment) return out;
  if (proto === 6 || proto === 17 || proto === 132) {
    if (buf.length < off + (proto === 6 ? 14 : 4)) return undefined;
    out.sport = (buf[off] << 8) | buf[off + 1];
    out.dport = (buf[off + 2] << 8) | buf[off + 3];
    if (proto === 6) out.tcpFlags = buf[off + 13];
  } else if (proto === 1 || proto === 58) {
    if (buf.length < off + 1) return undefined;
    out.icmpType = buf[off];
  }
  return out;
}

export function parsePacketInfo(buf: Uint8Array): PacketInfo | undefined {
  if (buf.length < 1) return undefined;
  const version = buf[0] >> 4;
  if (version === 4) {
    const ihl = (buf[0] & 0x0f) * 4;
    if (ihl < 20 || buf.length < ihl) return undefined;
    const fragOffset = ((buf[6] & 0x1f) << 8) | buf[7];
    const proto = buf[9];
    return transport(buf, ihl, proto, { version: 4, src: buf.subarray(12, 16), dst: buf.subarray(16, 20), proto, fragment: fragOffset !== 0 });
  }
  if (version === 6) {
    if (buf.length < 40) return undefined;
    let next = buf[6];
    let off = 40;
    let fragment = false;
    for (let n = 0; n < MAX_EXTENSION_HEADERS; n++) {
      if (next === IPV6_FRAGMENT) {
        if (buf.length < off + 8) return undefined;
        fragment = (((buf[off + 2] << 8) | buf[off + 3]) & 0xfff8) !== 0;
        next = buf[off];
        off += 8;
      } else if (IPV6_EXTENSION_HEADERS.has(next)) {
        if (buf.length < off + 2) return undefined;
        const len = next === 51 ? (buf[off + 1] + 2) * 4 : (buf[off + 1] + 1) * 8;
        next = buf[off];
        off += len;
      } else break;
    }
    if (IPV6_EXTENSION_HEADERS.has(next) || next === IPV6_FRAGMENT) return undefined;
    return transport(buf, off, next, { version: 6, src: buf.subarray(8, 24), dst: buf.subarray(24, 40), proto: next, fragment });
  }
  return undefined;
}
