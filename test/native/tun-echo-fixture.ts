/**
 * Runs inside a test's network namespace (the TUN needs a namespace of its own so nothing
 * leaks to the host): creates a TUN with 10.77.0.1/24 and reflects every IPv4 UDP packet it
 * reads back into the TUN with addresses and ports swapped (the IPv4 and UDP checksums stay
 * valid: both are one's-complement sums, indifferent to the order of the swapped fields).
 * A UDP socket on 10.77.0.1 sends `count` datagrams to 10.77.0.2 and must get each one back.
 * argv: <tun name> <mtu> <count> [direct|worker]. Prints one JSON line with the results.
 */
import { createSocket } from 'node:dgram';
import { createTun } from '../../native/index.js';

const [name, mtuText, countText, writer] = process.argv.slice(2);
const mtu = Number(mtuText);
const count = Number(countText);
const tun = await createTun({ name, mtu, addresses: ['10.77.0.1/24'], writer: writer === 'worker' ? 'worker' : 'direct' });
let batches = 0;
let maxBatch = 0;
let reflected = 0;
tun.start(
  (packets) => {
    batches++;
    maxBatch = Math.max(maxBatch, packets.length);
    const out: Uint8Array[] = [];
    for (const p of packets) {
      // IPv4 (RFC 791) carrying UDP (protocol 17, RFC 768).
      if (p.length < 28 || p[0] >> 4 !== 4 || p[9] !== 17) continue;
      const ihl = (p[0] & 0x0f) * 4;
      const r = Uint8Array.from(p);
      r.set(p.subarray(16, 20), 12);
      r.set(p.subarray(12, 16), 16);
      r.set(p.subarray(ihl + 2, ihl + 4), ihl);
      r.set(p.subarray(ihl, ihl + 2), ihl + 2);
      out.push(r);
      reflected++;
    }
    tun.write(out);
  },
  (err) => process.stderr.write(`tun error: ${err.message}\n`),
);

const sock = createSocket('udp4');
await new Promise<void>((resolve) => sock.bind(0, '10.77.0.1', resolve));
const expected = new Map<number, Buffer>();
let received = 0;
let mismatches = 0;
let wake: (() => void) | undefined;
sock.on('message', (msg) => {
  const id = msg.readUInt32BE(0);
  const want = expected.get(id);
  if (!want || !want.equals(msg)) mismatches++;
  expected.delete(id);
  received++;
  if (expected.size === 0) wake?.();
});
// Rounds of ROUND datagrams, each fully echoed before the next, so the socket's receive
// buffer (not the TUN) is never what drops; each round still reaches the TUN as a burst.
const ROUND = 64;
const maxPayload = mtu - 28;
for (let i = 0; i < count; ) {
  const roundDone = new Promise<void>((resolve) => (wake = resolve));
  for (const end = Math.min(count, i + ROUND); i < end; i++) {
    const len = 4 + ((i * 7919) % (maxPayload - 4));
    const b = Buffer.alloc(len, i & 0xff);
    b.writeUInt32BE(i, 0);
    expected.set(i, b);
    sock.send(b, 9999, '10.77.0.2');
  }
  // Generous: the reader thread may still be starting (loading tsx) on a loaded machine.
  const ok = await Promise.race([roundDone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
  if (!ok) break;
}
sock.close();
await tun.close();
process.stdout.write(`${JSON.stringify({ name: tun.name, mtu: tun.mtu, sent: count, received, mismatches, reflected, batches, maxBatch })}\n`);
