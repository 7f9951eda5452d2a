/**
 * A TCP transfer tool for netlab tests, run inside a namespace:
 *   recv HOST PORT          listen, read one connection to EOF, print "RECV <bytes> <sha256>"
 *   send HOST PORT FILE     connect (retrying while refused, up to 30 s), stream FILE, print "SENT <bytes> <sha256>"
 *   listen HOST PORT        accept connections and close them at once (a reachable TCP service)
 *   connect HOST PORT MS    exit 0 if a connection is established within MS, else 1
 *   connect-many - LIST MS  try every HOST:PORT in the comma-separated LIST at once; print
 *                           "OK HOST:PORT" or "FAIL HOST:PORT" for each (one process, so a
 *                           loaded machine's process start-up never eats the timeout)
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
} else if (mode === 'connect-many') {
  const targets = portText.split(',');
  const ms = Number(arg);
  void Promise.all(
    targets.map(
      (t) =>
        new Promise<void>((resolve) => {
          const i = t.lastIndexOf(':');
          const sock = connect({ host: t.slice(0, i), port: Number(t.slice(i + 1)) });
          const done = (ok: boolean) => {
            clearTimeout(timer);
            sock.destroy();
            process.stdout.write(`${ok ? 'OK' : 'FAIL'} ${t}\n`);
            resolve();
          };
          const timer = setTimeout(() => done(false), ms);
          sock.once('connect', () => done(true));
          sock.once('error', () => done(false));
        }),
    ),
  ).then(() => process.exit(0));
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
