/**
 * Just enough of the classic pcap format (tcpdump -w) to pull WireGuard payloads out of a
 * capture on an Ethernet (veth) link: bounds-checked, it throws on anything malformed.
 */
const PCAP_MAGIC_LE = 0xa1b2c3d4;
const LINKTYPE_ETHERNET = 1;
const ETH_HEADER = 14;
const ETHERTYPE_IPV4 = 0x0800;
const IPPROTO_UDP = 17;

export interface UdpRecord {
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  payload: Buffer;
}

export function udpRecords(file: Buffer): UdpRecord[] {
  if (file.length < 24 || file.readUInt32LE(0) !== PCAP_MAGIC_LE) throw new Error('not a little-endian microsecond pcap file');
  if (file.readUInt32LE(20) !== LINKTYPE_ETHERNET) throw new Error(`unsupported link type ${file.readUInt32LE(20)}`);
  const out: UdpRecord[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const incl = file.readUInt32LE(off + 8);
    const start = off + 16;
    off = start + incl;
    if (off > file.length) throw new Error('truncated pcap record');
    const f = file.subarray(start, start + incl);
    if (f.length < ETH_HEADER + 28 || f.readUInt16BE(12) !== ETHERTYPE_IPV4) continue;
    const ip = f.subarray(ETH_HEADER);
    const ihl = (ip[0] & 0x0f) * 4;
    if (ip[9] !== IPPROTO_UDP || ip.length < ihl + 8) continue;
    const udpLen = ip.readUInt16BE(ihl + 4);
    if (udpLen < 8 || ihl + udpLen > ip.length) continue;
    out.push({
      src: ip.subarray(12, 16).join('.'),
      dst: ip.subarray(16, 20).join('.'),
      srcPort: ip.readUInt16BE(ihl),
      dstPort: ip.readUInt16BE(ihl + 2),
      payload: Buffer.from(ip.subarray(ihl + 8, ihl + udpLen)),
    });
  }
  return out;
}
