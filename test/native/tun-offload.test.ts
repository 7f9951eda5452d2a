/**
 * TSO splitting for IFF_VNET_HDR TUN reads (native/tun-offload.ts): segments carry the right
 * lengths, IDs, sequence numbers, flags and valid checksums (checked by an independent RFC 1071
 * sum); partial checksums are completed; malformed reads are refused without throwing (fuzz).
 * The real kernel path is covered end to end by test/wireguard-interop (100 MB, SHA-256).
 */
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { test } from 'node:test';
import { MAX_SEGMENTS_PER_READ, VIRTIO_NET_HDR_LEN, splitOffloaded } from '../../native/tun-offload.js';

/** RFC 1071 checksum, written independently of the module under test: 0 when a packet verifies. */
function checksum(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

function tcpChecksumOk(pkt: Uint8Array): boolean {
  const v6 = pkt[0] >> 4 === 6;
  const ipLen = v6 ? 40 : (pkt[0] & 15) * 4;
  const l4 = [...pkt.subarray(ipLen)];
  const pseudo = v6
    ? [...pkt.subarray(8, 40), 0, 0, l4.length >> 8, l4.length & 255, 0, 0, 0, 6]
    : [...pkt.subarray(12, 20), 0, 6, l4.length >> 8, l4.length & 255];
  return checksum([...pseudo, ...l4]) === 0;
}

interface Built {
  read: Uint8Array;
  payload: Uint8Array;
}

/** A super-packet as the kernel hands it over: virtio_net_hdr, IP header, TCP header (with options), payload. */
function superPacket(v6: boolean, payloadLen: number, mss: number, tcpFlags: number): Built {
  const ipLen = v6 ? 40 : 20;
  const tcpLen = 32; // 20 + 12 bytes of options (timestamps), as Linux sends them
  const payload = randomFillSync(new Uint8Array(payloadLen));
  const read = new Uint8Array(VIRTIO_NET_HDR_LEN + ipLen + tcpLen + payloadLen);
  const h = new DataView(read.buffer);
  h.setUint8(0, 1); // NEEDS_CSUM
  h.setUint8(1, v6 ? 4 : 1); // GSO_TCPV6 / GSO_TCPV4
  h.setUint16(2, ipLen + tcpLen, true);
  h.setUint16(4, mss, true);
  h.setUint16(6, ipLen, true);
  h.setUint16(8, 16, true);
  const p = VIRTIO_NET_HDR_LEN;
  if (v6) {
    read[p] = 0x60;
    h.setUint16(p + 4, tcpLen + payloadLen);
    read[p + 6] = 6;
    read[p + 7] = 64;
    read.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], p + 8);
    read.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], p + 24);
  } else {
    read[p] = 0x45;
    h.setUint16(p + 2, ipLen + tcpLen + payloadLen);
    h.setUint16(p + 4, 0xfffe); // the ID wraps within this packet
    read[p + 8] = 64;
    read[p + 9] = 6;
    read.set([10, 9, 0, 1, 10, 9, 0, 2], p + 12);
  }
  const t = p + ipLen;
  h.setUint16(t, 40000);
  h.setUint16(t + 2, 5201);
  h.setUint32(t + 4, 0xffff_f000); // the sequence number wraps too
  h.setUint32(t + 8, 12345);
  read[t + 12] = (tcpLen / 4) << 4;
  read[t + 13] = tcpFlags;
  h.setUint16(t + 14, 501);
  read.fill(1, t + 20, t + tcpLen);
  read.set(payload, t + tcpLen);
  return { read, payload };
}

for (const v6 of [false, true]) {
  test(`a TCP ${v6 ? 'IPv6' : 'IPv4'} super-packet splits into valid MSS-sized segments`, () => {
    const mss = 1228;
    const { read, payload } = superPacket(v6, 10 * mss + 100, mss, 0x80 | 0x18 | 0x01); // CWR, ACK|PSH, FIN
    const out = new Uint8Array(128 * 1024);
    const lens = new Uint32Array(64);
    const n = splitOffloaded(read, read.length, out, 7, lens, 3);
    assert.equal(n, 11);
    const hdr = (v6 ? 40 : 20) + 32;
    let off = 7;
    const carried: number[] = [];
    for (let i = 0; i < n; i++) {
      const seg = out.subarray(off, off + lens[3 + i]);
      const v = new DataView(seg.buffer, seg.byteOffset, seg.length);
      const segPayload: number = i < n - 1 ? mss : 100;
      assert.equal(seg.length, hdr + segPayload);
      if (v6) assert.equal(v.getUint16(4), seg.length - 40);
      else {
        assert.equal(v.getUint16(2), seg.length);
        assert.equal(v.getUint16(4), (0xfffe + i) & 0xffff);
        assert.equal(checksum([...seg.subarray(0, 20)]), 0, `IPv4 header checksum of segment ${i}`);
      }
      const t = v6 ? 40 : 20;
      assert.equal(v.getUint32(t + 4), (0xffff_f000 + i * mss) >>> 0, `sequence number of segment ${i}`);
      const flags = seg[t + 13];
      assert.equal(flags & 0x80, i === 0 ? 0x80 : 0, 'CWR only on the first');
      assert.equal(flags & 0x09, i === n - 1 ? 0x09 : 0, 'FIN and PSH only on the last');
      assert.equal(flags & 0x10, 0x10, 'ACK on all');
      assert.ok(tcpChecksumOk(seg), `TCP checksum of segment ${i}`);
      carried.push(...seg.subarray(hdr));
      off += seg.length;
    }
    assert.deepEqual(Uint8Array.from(carried), payload);
  });
}

test('a plain read with NEEDS_CSUM gets its checksum completed; one without is copied as is', () => {
  const { read } = superPacket(false, 300, 1228, 0x18);
  read[1] = 0; // GSO_NONE
  const p = VIRTIO_NET_HDR_LEN;
  // The kernel leaves the pseudo-header sum (not complemented) in the checksum field.
  const pseudo = [...read.subarray(p + 12, p + 20), 0, 6, 0, 32 + 300];
  let s = 0;
  for (let i = 0; i < pseudo.length; i += 2) s += (pseudo[i] << 8) | pseudo[i + 1];
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  read[p + 20 + 16] = s >> 8;
  read[p + 20 + 17] = s & 0xff;
  const out = new Uint8Array(2000);
  const lens = new Uint32Array(4);
  assert.equal(splitOffloaded(read, read.length, out, 0, lens, 0), 1);
  assert.equal(lens[0], read.length - p);
  assert.ok(tcpChecksumOk(out.subarray(0, lens[0])));
  read[0] = 0; // no NEEDS_CSUM: bytes pass through untouched
  assert.equal(splitOffloaded(read, read.length, out, 0, lens, 0), 1);
  assert.deepEqual(out.subarray(0, lens[0]), read.subarray(p));
});

test('reads that are malformed or do not fit the output are refused (-1)', () => {
  const { read } = superPacket(false, 5000, 1000, 0x10);
  const out = new Uint8Array(64 * 1024);
  const lens = new Uint32Array(16);
  const cases: Array<[string, (r: Uint8Array) => void, number?]> = [
    ['UDP GSO type', (r) => (r[1] = 3)],
    ['gso_size 0', (r) => ((r[4] = 0), (r[5] = 0))],
    ['IPv6 GSO type on an IPv4 packet', (r) => (r[1] = 4)],
    ['not TCP', (r) => (r[VIRTIO_NET_HDR_LEN + 9] = 17)],
    ['csum_start past the IP header', (r) => (r[6] = 24)],
    ['TCP header longer than the packet', (r) => (r[VIRTIO_NET_HDR_LEN + 20 + 12] = 0xf0), VIRTIO_NET_HDR_LEN + 20 + 40],
    ['TCP data offset below 5 words', (r) => (r[VIRTIO_NET_HDR_LEN + 20 + 12] = 0x40)],
    ['truncated to the IP header', () => {}, VIRTIO_NET_HDR_LEN + 30],
    ['only a virtio header', () => {}, VIRTIO_NET_HDR_LEN],
  ];
  for (const [what, mutate, len] of cases) {
    const r = read.slice();
    mutate(r);
    assert.equal(splitOffloaded(r, len ?? r.length, out, 0, lens, 0), -1, what);
  }
  assert.equal(splitOffloaded(read, read.length, out, 0, new Uint32Array(3), 0), -1, 'more segments than lens has room for');
  assert.equal(splitOffloaded(read, read.length, new Uint8Array(4000), 0, lens, 0), -1, 'more bytes than out has room for');
  assert.equal(splitOffloaded(read, read.length + 1, out, 0, lens, 0), -1, 'len beyond the buffer');
});

test('fuzz: random and bit-flipped reads never throw, and segments stay within what is reported', () => {
  const base = [superPacket(false, 6000, 1228, 0x18).read, superPacket(true, 6000, 1208, 0x18).read];
  const size = 100 * 1024;
  const out = new Uint8Array(size);
  const untouched = Buffer.alloc(size, 0xaa);
  const lens = new Uint32Array(MAX_SEGMENTS_PER_READ + 8);
  for (let i = 0; i < 3000; i++) {
    let r: Uint8Array;
    if (i % 3 === 0) r = randomFillSync(new Uint8Array(Math.floor(Math.random() * 200)));
    else {
      r = base[i % 2].slice();
      for (let k = 0; k < 1 + (i % 4); k++) r[Math.floor(Math.random() * Math.min(r.length, 120))] ^= 1 << (i % 8);
    }
    out.fill(0xaa);
    const n = splitOffloaded(r, r.length, out, 0, lens, 4);
    assert.ok(n === -1 || (n >= 1 && n <= MAX_SEGMENTS_PER_READ), `result ${n}`);
    if (n < 1) continue;
    let total = 0;
    for (let k = 0; k < n; k++) total += lens[4 + k];
    assert.ok(total <= size, 'segments fit the output');
    assert.equal(Buffer.compare(out.subarray(total), untouched.subarray(total)), 0, 'nothing written past the reported segments');
  }
});
