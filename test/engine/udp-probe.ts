/**
 * Timing probes for netlab tests, measured inside the namespace so process start-up on a
 * loaded machine does not count:
 *   echo HOST PORT    echo every datagram back (prints LISTENING)
 *   probe HOST PORT   send a datagram every 10 ms until the first echo, then every 200 ms
 *                     (keeping the path active); prints "START <epoch ms>" before the first
 *                     send and "FIRST <ms>" when the first echo arrives
 */
import { createSocket } from 'node:dgram';

const [mode, host, portText] = process.argv.slice(2);
const port = Number(portText);
const sock = createSocket(host.includes(':') ? 'udp6' : 'udp4');

if (mode === 'echo') {
  sock.on('message', (m, r) => sock.send(m, r.port, r.address));
  sock.bind(port, host, () => process.stdout.write('LISTENING\n'));
} else if (mode === 'probe') {
  let first = true;
  let timer: NodeJS.Timeout;
  const start = performance.now();
  sock.on('message', () => {
    if (!first) return;
    first = false;
    process.stdout.write(`FIRST ${(performance.now() - start).toFixed(1)}\n`);
    clearInterval(timer);
    timer = setInterval(() => sock.send('probe', port, host), 200);
  });
  sock.bind(0, () => {
    process.stdout.write(`START ${Date.now()}\n`);
    sock.send('probe', port, host);
    timer = setInterval(() => sock.send('probe', port, host), 10);
  });
  process.on('SIGTERM', () => process.exit(0));
} else {
  process.stderr.write('usage: udp-probe echo|probe HOST PORT\n');
  process.exit(2);
}
