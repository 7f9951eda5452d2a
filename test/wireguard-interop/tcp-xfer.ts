/**
 * TCP bulk transfer with SHA-256 on both ends. argv:
 *   recv <addr> <port>                        accept one connection; print JSON {bytes, sha256}
 *   send <addr> <port> <bytes> [<seconds>]    send <bytes> of random data, or keep sending for <seconds>
 *                                             when given (bytes then only caps the total); print JSON {bytes, sha256}
 */
import { createHash, randomFillSync } from 'node:crypto';
import { connect, createServer } from 'node:net';

const [mode, addr, portText, bytesText, secondsText] = process.argv.slice(2);
const port = Number(portText);

if (mode === 'recv') {
  const server = createServer((sock) => {
    const h = createHash('sha256');
    let bytes = 0;
    sock.on('data', (c: Buffer) => {
      bytes += c.length;
      h.update(c);
    });
    sock.on('end', () => {
      process.stdout.write(`${JSON.stringify({ bytes, sha256: h.digest('hex') })}\n`);
      sock.end();
      server.close();
    });
  });
  server.listen(port, addr, () => process.stdout.write('listening\n'));
} else {
  const limit = Number(bytesText);
  const until = secondsText ? Date.now() + Number(secondsText) * 1000 : Infinity;
  const h = createHash('sha256');
  let sent = 0;
  const sock = connect(port, addr, () => {
    const chunk = Buffer.alloc(64 * 1024);
    const pump = () => {
      while (sent < limit && Date.now() < until) {
        const c = randomFillSync(chunk).subarray(0, Math.min(chunk.length, limit - sent));
        h.update(c);
        sent += c.length;
        if (!sock.write(Buffer.from(c))) return sock.once('drain', pump);
      }
      sock.end();
    };
    pump();
  });
  sock.on('close', () => process.stdout.write(`${JSON.stringify({ bytes: sent, sha256: h.digest('hex') })}\n`));
  sock.on('error', (err) => {
    process.stderr.write(`send: ${err.message}\n`);
    process.exitCode = 1;
  });
}
