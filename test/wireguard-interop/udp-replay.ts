/** Resends captured UDP payloads (hex, comma-separated) `times` times each to <addr> <port>. Prints JSON {sent}. */
import { createSocket } from 'node:dgram';

const [addr, portText, hexList, timesText] = process.argv.slice(2);
const sock = createSocket('udp4');
let sent = 0;
for (let i = 0; i < Number(timesText); i++) {
  for (const hex of hexList.split(',')) {
    await new Promise<void>((resolve) => sock.send(Buffer.from(hex, 'hex'), Number(portText), addr, () => resolve()));
    sent++;
  }
}
sock.close();
process.stdout.write(`${JSON.stringify({ sent })}\n`);
