/**
 * A TCP transfer tool for netlab tests, run inside a namespace:
 *   recv HOST PORT          listen, read one connection to EOF, print "RECV <bytes> <sha256>"
 *   send HOST PORT FILE     connect (retrying while refused, up to 30 s), stream FILE, print "SENT <bytes> <sha256>"
 *   listen HOST PORT        accept connections and close them at once (a reachable TCP service)
 *   connect HOST PORT MS    exit 0 if a connection is established within MS, else 1
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { connect, createServer } from 'node:net';

const [mode, host, portText, arg] = process.argv.slice(2);
const port = Number(portText);

if (mode === 'recv') {
  const server = createServer((sock) => {
    const h = createHash('sha256');
    let n = 0;
    sock.on('data', (d: Buffer) => {
      n += d.length;
      h.update(d);
    });
    sock.on('end', () => {
      process.stdout.write(`RECV ${n} ${h.digest('hex')}\n`);
      sock.end();
      server.close();
    });
  });
  server.listen(port, host, () => process.stdout.write('LISTENING\n'));
} else if (mode === 'listen') {
  createServer((sock) => sock.end()).listen(port, host, () => process.stdout.write('LISTENING\n'));
} else if (mode === 'connect') {
  const sock = connect({ host, port });
  const t = setTimeout(() => process.exit(1), Number(arg));
  sock.on('connect', () => {
    clearTimeout(t);
    sock.destroy();
    process.exit(0);
  });
  sock.on('error', () => process.exit(1));
} else if (mode === 'send') {
  const deadline = Date.now() + 30_000;
  const attempt = () => {
    const sock = connect({ host, port });
    sock.once('error', (err: NodeJS.ErrnoException) => {
      if (Date.now() < deadline && (err.code === 'ECONNREFUSED' || err.code === 'EHOSTUNREACH' || err.code === 'ETIMEDOUT')) setTimeout(attempt, 200);
      else {
        process.stderr.write(`send: ${err.message}\n`);
        process.exit(1);
      }
    });
    sock.once('connect', () => {
      const h = createHash('sha256');
      let n = 0;
      const file = createReadStream(arg);
      file.on('data', (d) => {
        n += d.length;
        h.update(d);
      });
      file.pipe(sock);
      sock.on('finish', () => process.stdout.write(`SENT ${n} ${h.digest('hex')}\n`));
      sock.on('close', () => process.exit(0));
    });
  };
  attempt();
} else {
  process.stderr.write('usage: tcp-xfer recv|send|listen|connect HOST PORT [FILE|MS]\n');
  process.exit(2);
}
