/**
 * Small UDP helpers run inside lab namespaces:
 *   udp-tools.ts echo PORT                 echo every datagram back (prints "listening")
 *   udp-tools.ts ask HOST PORT [FROMPORT]  send "ping" and print the reply, exit 1 on timeout
 *   udp-tools.ts pcp-map GATEWAY CLIENT_IP INTERNAL_PORT LIFETIME
 *       send one PCP MAP request (RFC 6887 §11.1) and print the response as JSON
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';

const [cmd, ...args] = process.argv.slice(2);
// `echo` listens dual-stack (udp6 accepts IPv4-mapped peers); clients pick by the address family.
const sock = createSocket(cmd === 'echo' || args[0]?.includes(':') ? 'udp6' : 'udp4');

function timeout(ms: number, what: string) {
  return setTimeout(() => {
    console.log(`timeout: ${what}`);
    process.exit(1);
  }, ms);
}

if (cmd === 'echo') {
  sock.on('message', (m, r) => {
    console.log(`from ${r.address.replace(/^::ffff:/, "")}:${r.port}`);
    sock.send(m, r.port, r.address);
  });
  sock.bind(Number(args[0]), () => console.log('listening'));
} else if (cmd === 'ask') {
  const [host, port, from] = args;
  const t = timeout(3000, `no reply from ${host}:${port}`);
  sock.on('message', (m, r) => {
    clearTimeout(t);
    console.log(`reply ${m.toString()} from ${r.address}:${r.port}`);
    sock.close();
  });
  sock.bind(Number(from ?? 0), () => sock.send('ping', Number(port), host));
} else if (cmd === 'pcp-map') {
  const [gateway, clientIp, internalPort, lifetime] = args;
  const req = Buffer.alloc(60);
  req[0] = 2; // PCP version (RFC 6887 §7)
  req[1] = 1; // R=0, opcode MAP
  req.writeUInt32BE(Number(lifetime), 4);
  Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...clientIp.split('.').map(Number)]).copy(req, 8);
  const nonce = randomBytes(12);
  nonce.copy(req, 24);
  req[36] = 17; // UDP
  req.writeUInt16BE(Number(internalPort), 40);
  req.writeUInt16BE(Number(internalPort), 42);
  Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0]).copy(req, 44);
  const t = timeout(3000, 'no PCP response');
  sock.on('message', (m) => {
    clearTimeout(t);
    const ok = m.length >= 60 && m[0] === 2 && m[1] === 0x81 && m.subarray(24, 36).equals(nonce);
    console.log(JSON.stringify({ ok, result: m[3], lifetime: m.readUInt32BE(4), externalPort: m.readUInt16BE(42), externalIp: [...m.subarray(56, 60)].join('.') }));
    sock.close();
  });
  sock.bind(0, () => sock.send(req, 5351, gateway));
} else {
  console.error('usage: udp-tools.ts echo PORT | ask HOST PORT [FROMPORT] | pcp-map GATEWAY CLIENT_IP PORT LIFETIME');
  process.exit(2);
}
