/**
 * UDP "ping" through the tunnel (the CI image has no ICMP ping binary). argv:
 *   server <addr> <port>                 echo every datagram back; print "rx <len> <first 8 bytes hex>" per datagram
 *   client <addr> <port> <count> <ms>    send numbered pings one at a time (each waits up to <ms>); print JSON
 */
import { createSocket } from 'node:dgram';

const [mode, addr, portText, countText, waitText] = process.argv.slice(2);
const port = Number(portText);
const sock = createSocket('udp4');

if (mode === 'server') {
  sock.on('message', (m, r) => {
    process.stdout.write(`rx ${m.length} ${m.subarray(0, 8).toString('hex')}\n`);
    sock.send(m, r.port, r.address);
  });
  sock.bind(port, addr, () => process.stdout.write('listening\n'));
  const stop = () => sock.close();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
} else {
  const count = Number(countText);
  const waitMs = Number(waitText);
  const rtts: number[] = [];
  let pending: ((m: Buffer) => void) | undefined;
  sock.on('message', (m) => pending?.(m));
  for (let i = 0; i < count; i++) {
    const payload = Buffer.from(`ping ${i} ${process.pid}`);
    const t0 = performance.now();
    const got = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), waitMs);
      pending = (m) => {
        if (!m.equals(payload)) return;
        clearTimeout(timer);
        resolve(true);
      };
      sock.send(payload, port, addr);
    });
    if (got) rtts.push(Math.round((performance.now() - t0) * 100) / 100);
  }
  sock.close();
  process.stdout.write(`${JSON.stringify({ sent: count, received: rtts.length, rtts })}\n`);
}
