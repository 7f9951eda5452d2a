// IPv6 text <-> 16-byte conversions (RFC 4291 §2.2 input forms, RFC 5952 output form).
import { isIPv4, isIPv6 } from 'node:net';

function ipv4Bytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** Parses any RFC 4291 §2.2 text form (incl. "::" and a trailing dotted quad) to 16 bytes. */
export function parseIPv6(ip: string): Buffer {
  if (!isIPv6(ip)) throw new TypeError(`not an IPv6 address: ${ip}`);
  const zone = ip.indexOf('%');
  const text = zone >= 0 ? ip.slice(0, zone) : ip;
  const toWords = (part: string): number[] => {
    if (part === '') return [];
    return part.split(':').flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)];
      const [a, b, c, d] = ipv4Bytes(g) as [number, number, number, number];
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  let words: number[];
  const gap = text.indexOf('::');
  if (gap >= 0) {
    const head = toWords(text.slice(0, gap));
    const tail = toWords(text.slice(gap + 2));
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    words = toWords(text);
  }
  const b = Buffer.alloc(16);
  words.forEach((w, i) => b.writeUInt16BE(w, i * 2));
  return b;
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (≥ 2) of zero groups as "::". */
export function formatIPv6(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError('an IPv6 address is 16 bytes');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] as number) << 8) | (b[i + 1] as number));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** RFC 4291 §2.5.5.2: IPv4 addresses as IPv4-mapped IPv6 (::ffff:a.b.c.d); IPv6 as is. */
export function encodeAddress16(ip: string): Buffer {
  if (!isIPv4(ip)) return parseIPv6(ip);
  const b = Buffer.alloc(16);
  b[10] = 0xff;
  b[11] = 0xff;
  b.set(ipv4Bytes(ip), 12);
  return b;
}

/** Inverse of encodeAddress16: IPv4-mapped addresses come back as dotted quads. */
export function decodeAddress16(b: Uint8Array): string {
  if (b.length !== 16) throw new RangeError('an IPv6 address is 16 bytes');
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? `${b[12]}.${b[13]}.${b[14]}.${b[15]}` : formatIPv6(b);
}
