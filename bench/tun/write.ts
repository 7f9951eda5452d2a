/**
 * Micro-benchmark of the TUN write path (Linux, root): packets/s written into a real TUN from
 * the main thread with koffi's write(2) on the non-blocking fd (what native/linux-tun.ts does)
 * versus node's fs.writeSync on the same fd. Packets are 1280-byte IPv4/UDP datagrams to a
 * local address with no listener, so the kernel takes each one through its input path.
 * Runs itself inside a throwaway network namespace. Run: node --import tsx bench/tun/write.ts
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createTun } from '../../native/index.js';
import { libc } from '../../native/posix-libc.js';

const PACKET = 1280;
const COUNT = 200_000;

function udpPacket(): Uint8Array {
  const p = new Uint8Array(PACKET);
  const v = new DataView(p.buffer);
  p[0] = 0x45; // IPv4, IHL 5 (RFC 791)
  v.setUint16(2, PACKET);
  p[8] = 64;
  p[9] = 17; // UDP
  p.set([10, 78, 0, 2], 12);
  p.set([10, 78, 0, 1], 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, 40000);
  v.setUint16(22, 9); // discard port, nobody listens
  v.setUint16(24, PACKET - 20); // UDP checksum 0 = none (RFC 768)
  return p;
}

async function inner(): Promise<void> {
  const tun = await createTun({ name: 'pbwrite0', addresses: ['10.78.0.1/24'] });
  const fd = (tun as unknown as { fd: number }).fd;
  const pkt = udpPacket();
  const c = libc();
  const rows: Array<[string, number]> = [];
  for (const [name, write] of [
    ['koffi write(2)', () => c.write(fd, pkt, PACKET)],
    ['fs.writeSync', () => writeSync(fd, pkt, 0, PACKET)],
  ] as Array<[string, () => unknown]>) {
    for (let i = 0; i < 10_000; i++) write();
    const t0 = performance.now();
    for (let i = 0; i < COUNT; i++) write();
    rows.push([name, COUNT / ((performance.now() - t0) / 1000)]);
  }
  await tun.close();
  console.log(`TUN write path, ${PACKET}-byte packets, ${COUNT} writes each`);
  for (const [name, pps] of rows) console.log(`${name.padEnd(16)}${(pps / 1000).toFixed(0).padStart(8)} kpkt/s ${((pps * PACKET * 8) / 1e9).toFixed(2).padStart(7)} Gbit/s  ${(1e6 / pps).toFixed(2)} us/packet`);
}

if (process.argv[2] === 'inner') {
  await inner();
} else {
  const ns = `pb-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fileURLToPath(import.meta.url), 'inner'], { stdio: 'inherit' });
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}
