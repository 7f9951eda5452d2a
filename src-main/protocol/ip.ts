/**
 * IP addresses and prefixes as bytes (4 or 16), shared by cryptokey routing, the policy
 * compiler and the packet filter. Text forms per RFC 4291 §2.2 and RFC 5952.
 */
export interface Cidr {
  /** 4 or 16 bytes, host bits cleared. */
  addr: Uint8Array;
  bits: number;
}

export class InvalidCidrError extends Error {
  override readonly name = 'InvalidCidrError';
}

export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

export function parseIPv6(text: string): Uint8Array | undefined {
  const zone = text.indexOf('%');
  const t = zone >= 0 ? text.slice(0, zone) : text;
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      if (i === items.length - 1 && it.includes('.')) {
        const v4 = parseIPv4(it);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Parses "10.0.0.0/8", "fd00::/8" or a bare address (a host route); clears host bits. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  const host = (slash >= 0 ? text.slice(0, slash) : text).trim();
  const addr = host.includes(':') ? parseIPv6(host) : parseIPv4(host);
  if (!addr) throw new InvalidCidrError(`invalid IP address in "${text}"`);
  const max = addr.length * 8;
  const bitsText = slash >= 0 ? text.slice(slash + 1).trim() : String(max);
  if (!/^[0-9]{1,3}$/.test(bitsText) || Number(bitsText) > max) throw new InvalidCidrError(`invalid prefix length in "${text}"`);
  const bits = Number(bitsText);
  for (let i = 0; i < addr.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    addr[i] &= (0xff << (8 - keep)) & 0xff;
  }
  return { addr, bits };
}

export function formatCidr(c: Cidr): string {
  if (c.addr.length === 4) return `${c.addr.join('.')}/${c.bits}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((c.addr[i] << 8) | c.addr[i + 1]).toString(16));
  // Compress the longest run of zero groups (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const text = best < 0 ? groups.join(':') : `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
  return `${text}/${c.bits}`;
}


/** Parses a bare IPv4 or IPv6 address. */
export function parseIp(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

/** Whether `addr` (4 or 16 bytes) lies inside `c`. */
export function cidrContains(c: Cidr, addr: Uint8Array): boolean {
  if (c.addr.length !== addr.length) return false;
  const full = c.bits >>> 3;
  for (let i = 0; i < full; i++) if (c.addr[i] !== addr[i]) return false;
  const rem = c.bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (c.addr[full] & mask) === (addr[full] & mask);
}

export function formatIp(addr: Uint8Array): string {
  const text = formatCidr({ addr, bits: addr.length * 8 });
  return text.slice(0, text.lastIndexOf('/'));
}
