/**
 * Handshake flood for the cookie test: WireGuard initiation messages (whitepaper §5.4.2, type 1,
 * 148 bytes) with random contents but a VALID mac1 for the responder's public key (§5.4.4:
 * mac1 = MAC(HASH(LABEL_MAC1 || S_pub_responder), msg[0:116]), MAC = keyed BLAKE2s-128), so the
 * responder has to count them as handshake load. Counts cookie replies (type 3, 64 bytes).
 * argv: <addr> <port> <responder public key base64> <max duration ms> <messages per second>. Stops early on
 * SIGTERM. Prints JSON.
 */
import { blake2s } from '@noble/hashes/blake2.js';
import { randomFillSync } from 'node:crypto';
import { createSocket } from 'node:dgram';

const [addr, portText, pubB64, msText, rateText] = process.argv.slice(2);
const MESSAGE_INITIATION = 1;
const MESSAGE_COOKIE_REPLY = 3;
const INITIATION_SIZE = 148;
const MAC1_OFFSET = 116;
const COOKIE_REPLY_SIZE = 64;
const LABEL_MAC1 = new TextEncoder().encode('mac1----');

const pub = Buffer.from(pubB64, 'base64');
const mac1Key = blake2s(Buffer.concat([LABEL_MAC1, pub]));
const sock = createSocket('udp4');
let cookieReplies = 0;
sock.on('message', (m) => {
  if (m.length === COOKIE_REPLY_SIZE && m[0] === MESSAGE_COOKIE_REPLY) cookieReplies++;
});
await new Promise<void>((resolve) => sock.bind(0, resolve));

const end = Date.now() + Number(msText);
let stopped = false;
process.once('SIGTERM', () => (stopped = true));
const perTick = Math.max(1, Math.round(Number(rateText) / 100));
let sent = 0;
while (!stopped && Date.now() < end) {
  for (let i = 0; i < perTick; i++) {
    const msg = Buffer.alloc(INITIATION_SIZE);
    msg[0] = MESSAGE_INITIATION;
    randomFillSync(msg, 4, MAC1_OFFSET - 4);
    msg.set(blake2s(msg.subarray(0, MAC1_OFFSET), { key: mac1Key, dkLen: 16 }), MAC1_OFFSET);
    sock.send(msg, Number(portText), addr);
    sent++;
  }
  await new Promise((r) => setTimeout(r, 10));
}
await new Promise((r) => setTimeout(r, 300));
sock.close();
process.stdout.write(`${JSON.stringify({ sent, cookieReplies })}\n`);
