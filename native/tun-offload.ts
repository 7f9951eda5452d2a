/**
 * TCP segmentation offload for a Linux TUN opened with IFF_VNET_HDR and TUNSETOFFLOAD
 * (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6): the kernel then hands over TCP "super-packets" of up
 * to 64 KiB, each behind a struct virtio_net_hdr (virtio spec 1.2 §5.1.6), instead of one
 * read(2) per MTU-sized segment, and may leave the transport checksum for us to finish. This
 * module turns one such read into the plain IP packets WireGuard carries: it cuts the payload
 * at gso_size, rewrites each copy's IP length/ID and TCP sequence number/flags, and computes
 * the checksums (RFC 1071), as the kernel's own software GSO would. Everything read is
 * bounds-checked; a malformed read yields -1 and is dropped.
 */

/** sizeof(struct virtio_net_hdr) without mergeable buffers, the TUN default (TUNSETVNETHDRSZ). */
export const VIRTIO_NET_HDR_LEN = 10;
// <linux/virtio_net.h>
const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
const VIRTIO_NET_HDR_GSO_NONE = 0;
const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
const VIRTIO_NET_HDR_GSO_ECN = 0x80;
/** IP protocol number of TCP (RFC 9293). */
const IPPROTO_TCP = 6;
// TCP flags (RFC 9293 §3.1; CWR from RFC 3168 §23.2): only the last segment keeps FIN and PSH,
// only the first keeps CWR, as Linux's tcp_gso_segment does.
const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;
/** More segments than this from one read means a nonsensical gso_size. */
export const MAX_SEGMENTS_PER_READ = 256;

/** One's-complement sum of bytes [start, end) as 16-bit big-endian words (RFC 1071), unfolded. */
function sum16(b: Uint8Array, start: number, end: number, acc: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (i < end) acc += b[i] << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** The TCP/UDP pseudo-header sum (RFC 9293 §3.1, RFC 8200 §8.1) for a packet at `ip`. */
function pseudoSum(b: Uint8Array, ip: number, v6: boolean, proto: number, l4len: number): number {
  const acc = v6 ? sum16(b, ip + 8, ip + 40, 0) : sum16(b, ip + 12, ip + 20, 0);
  return acc + proto + l4len;
}

/**
 * Appends the IP packets carried by one TUN read (`read[0..len)`: virtio_net_hdr, then the
 * packet) to `out` at `outOff`, their lengths to `lens` at `lensOff`. Returns the number of
 * packets, or -1 when the read is malformed or does not fit (then nothing is counted).
 */
export function splitOffloaded(read: Uint8Array, len: number, out: Uint8Array, outOff: number, lens: Uint32Array, lensOff: number): number {
  if (len < VIRTIO_NET_HDR_LEN || len > read.length) return -1;
  const flags = read[0];
  const gsoType = read[1] & ~VIRTIO_NET_HDR_GSO_ECN;
  const gsoSize = read[4] | (read[5] << 8);
  const csumStart = read[6] | (read[7] << 8);
  const csumOffset = read[8] | (read[9] << 8);
  const p = VIRTIO_NET_HDR_LEN;
  const pktLen = len - p;
  if (pktLen < 1) return -1;

  if (gsoType === VIRTIO_NET_HDR_GSO_NONE) {
    if (outOff + pktLen > out.length || lensOff >= lens.length) return -1;
    out.set(read.subarray(p, len), outOff);
    if (flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
      // The field holds the pseudo-header sum; complete it over [csum_start, end).
      const field = csumStart + csumOffset;
      if (csumStart >= pktLen || field + 2 > pktLen) return -1;
      const c = ~fold(sum16(out, outOff + csumStart, outOff + pktLen, 0)) & 0xffff;
      out[outOff + field] = c >>> 8;
      out[outOff + field + 1] = c & 0xff;
    }
    lens[lensOff] = pktLen;
    return 1;
  }
  if (gsoType !== VIRTIO_NET_HDR_GSO_TCPV4 && gsoType !== VIRTIO_NET_HDR_GSO_TCPV6) return -1;

  const v6 = gsoType === VIRTIO_NET_HDR_GSO_TCPV6;
  const version = read[p] >>> 4;
  if (version !== (v6 ? 6 : 4)) return -1;
  const ipHdr = v6 ? 40 : (read[p] & 0x0f) * 4;
  // Extension headers are not expected from the kernel's TSO path; anything else is refused.
  if (ipHdr < 20 || pktLen < ipHdr + 20 || read[p + (v6 ? 6 : 9)] !== IPPROTO_TCP || csumStart !== ipHdr) return -1;
  const tcpHdr = (read[p + ipHdr + 12] >>> 4) * 4;
  const hdrLen = ipHdr + tcpHdr;
  if (tcpHdr < 20 || pktLen < hdrLen || gsoSize === 0) return -1;
  const payload = pktLen - hdrLen;
  const segs = Math.max(1, Math.ceil(payload / gsoSize));
  if (segs > MAX_SEGMENTS_PER_READ || lensOff + segs > lens.length || outOff + segs * hdrLen + payload > out.length) return -1;

  const seq0 = ((read[p + ipHdr + 4] << 24) | (read[p + ipHdr + 5] << 16) | (read[p + ipHdr + 6] << 8) | read[p + ipHdr + 7]) >>> 0;
  const id0 = v6 ? 0 : (read[p + 4] << 8) | read[p + 5];
  const tcpFlags = read[p + ipHdr + 13];
  let o = outOff;
  for (let i = 0; i < segs; i++) {
    const from = hdrLen + i * gsoSize;
    const segLen = Math.min(gsoSize, payload - i * gsoSize);
    const total = hdrLen + segLen;
    out.set(read.subarray(p, p + hdrLen), o);
    out.set(read.subarray(p + from, p + from + segLen), o + hdrLen);
    if (v6) {
      const plen = total - 40;
      out[o + 4] = plen >>> 8;
      out[o + 5] = plen & 0xff;
    } else {
      const id = (id0 + i) & 0xffff;
      out[o + 2] = total >>> 8;
      out[o + 3] = total & 0xff;
      out[o + 4] = id >>> 8;
      out[o + 5] = id & 0xff;
      out[o + 10] = 0;
      out[o + 11] = 0;
      const ipc = ~fold(sum16(out, o, o + ipHdr, 0)) & 0xffff;
      out[o + 10] = ipc >>> 8;
      out[o + 11] = ipc & 0xff;
    }
    const t = o + ipHdr;
    const seq = (seq0 + i * gsoSize) >>> 0;
    out[t + 4] = seq >>> 24;
    out[t + 5] = (seq >>> 16) & 0xff;
    out[t + 6] = (seq >>> 8) & 0xff;
    out[t + 7] = seq & 0xff;
    let f = tcpFlags;
    if (i < segs - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= ~TCP_CWR;
    out[t + 13] = f;
    out[t + 16] = 0;
    out[t + 17] = 0;
    const l4 = total - ipHdr;
    const c = ~fold(sum16(out, t, o + total, pseudoSum(out, o, v6, IPPROTO_TCP, l4))) & 0xffff;
    out[t + 16] = c >>> 8;
    out[t + 17] = c & 0xff;
    lens[lensOff + i] = total;
    o += total;
  }
  return segs;
}
