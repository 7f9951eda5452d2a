/**
 * Cryptokey routing table (whitepaper §2): a binary trie per address family mapping
 * prefixes to peers. Outgoing packets pick the peer by longest-prefix match on the
 * destination; decrypted incoming packets are dropped unless the match for their source
 * is the peer they came from. Lookups read the address straight out of the packet.
 */
import { type Cidr, parseCidr } from '../protocol/ip.js';

export { type Cidr, formatCidr, InvalidCidrError, parseCidr, parseIPv4, parseIPv6 } from '../protocol/ip.js';

interface Node<T> {
  zero?: Node<T>;
  one?: Node<T>;
  value?: T;
}

function bitAt(buf: Uint8Array, off: number, i: number): number {
  return (buf[off + (i >>> 3)] >>> (7 - (i & 7))) & 1;
}

export class AllowedIps<T> {
  private readonly v4: Node<T> = {};
  private readonly v6: Node<T> = {};

  /** Routes `cidr` to `value`, replacing whichever peer had exactly that prefix. */
  insert(cidr: string | Cidr, value: T): void {
    const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
    let n = c.addr.length === 4 ? this.v4 : this.v6;
    for (let i = 0; i < c.bits; i++) {
      const b = bitAt(c.addr, 0, i);
      n = b ? (n.one ??= {}) : (n.zero ??= {});
    }
    n.value = value;
  }

  /** Removes the exact prefix (only if it belongs to `value`, when given). */
  remove(cidr: string | Cidr, value?: T): void {
    const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
    const path: Node<T>[] = [c.addr.length === 4 ? this.v4 : this.v6];
    for (let i = 0; i < c.bits; i++) {
      const next = bitAt(c.addr, 0, i) ? path[i].one : path[i].zero;
      if (!next) return;
      path.push(next);
    }
    const leaf = path[path.length - 1];
    if (value !== undefined && leaf.value !== value) return;
    leaf.value = undefined;
    this.prune(path, c.addr);
  }

  /** Removes every prefix routed to `value`. */
  removeValue(value: T): void {
    for (const c of this.prefixesOf(value)) this.remove(c, value);
  }

  /** Every prefix routed to `value`, in trie order. */
  prefixesOf(value: T): Cidr[] {
    const out: Cidr[] = [];
    const walk = (n: Node<T>, addr: Uint8Array, depth: number) => {
      if (n.value === value) out.push({ addr: addr.slice(), bits: depth });
      for (const [b, child] of [[0, n.zero], [1, n.one]] as const) {
        if (!child) continue;
        const byte = depth >>> 3;
        const mask = 0x80 >>> (depth & 7);
        if (b) addr[byte] |= mask;
        walk(child, addr, depth + 1);
        addr[byte] &= ~mask;
      }
    };
    walk(this.v4, new Uint8Array(4), 0);
    walk(this.v6, new Uint8Array(16), 0);
    return out;
  }

  /** Longest-prefix match of the address at buf[off..off+len) (len 4 or 16). */
  lookup(buf: Uint8Array, off: number, len: 4 | 16): T | undefined {
    let n: Node<T> | undefined = len === 4 ? this.v4 : this.v6;
    let best = n.value;
    const bits = len * 8;
    for (let i = 0; i < bits && n; i++) {
      n = bitAt(buf, off, i) ? n.one : n.zero;
      if (n && n.value !== undefined) best = n.value;
    }
    return best;
  }

  /** The peer for an IP packet's destination (IPv4 §3.1 RFC 791 / IPv6 §3 RFC 8200 offsets). */
  lookupDestination(packet: Uint8Array): T | undefined {
    const v = packet.length > 0 ? packet[0] >>> 4 : 0;
    if (v === 4 && packet.length >= 20) return this.lookup(packet, 16, 4);
    if (v === 6 && packet.length >= 40) return this.lookup(packet, 24, 16);
    return undefined;
  }

  /** The peer owning an IP packet's source address. */
  lookupSource(packet: Uint8Array): T | undefined {
    const v = packet.length > 0 ? packet[0] >>> 4 : 0;
    if (v === 4 && packet.length >= 20) return this.lookup(packet, 12, 4);
    if (v === 6 && packet.length >= 40) return this.lookup(packet, 8, 16);
    return undefined;
  }

  private prune(path: Node<T>[], addr: Uint8Array): void {
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i];
      if (n.value !== undefined || n.zero || n.one) return;
      const parent = path[i - 1];
      if (bitAt(addr, 0, i - 1)) parent.one = undefined;
      else parent.zero = undefined;
    }
  }
}
