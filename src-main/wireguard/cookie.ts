/**
 * MAC1/MAC2 and cookie replies (whitepaper §5.4.4 and §5.4.7), the DoS defence.
 * - mac1 = MAC(HASH(LABEL_MAC1 || S_pub_receiver), msg[0:off_mac1]) — proves the sender
 *   knows our public key; always required.
 * - mac2 = MAC(cookie, msg[0:off_mac2]) — proves the sender can receive at its source
 *   address; required only while the receiver is under load.
 * - cookie = MAC(R, source address), R a random secret rotated every two minutes, sent
 *   encrypted with XChaCha20-Poly1305 under HASH(LABEL_COOKIE || S_pub), with mac1 as AAD.
 */
import { MAC_LEN, XNONCE_LEN, equalBytes, hash, mac, randomBytes, xaeadOpen, xaeadSeal } from './crypto.js';
import { COOKIE_NONCE, COOKIE_RECEIVER, COOKIE_REPLY_SIZE, COOKIE_SEALED, MESSAGE_COOKIE_REPLY, writeHeader } from './messages.js';

const enc = new TextEncoder();
/** §5.4.4 labels. */
export const LABEL_MAC1 = enc.encode('mac1----');
export const LABEL_COOKIE = enc.encode('cookie--');

const mac1Offset = (msg: Uint8Array) => msg.length - 2 * MAC_LEN;
const mac2Offset = (msg: Uint8Array) => msg.length - MAC_LEN;

/** The receiving side: validates MACs on handshake messages sent to us and writes cookie replies. */
export class CookieChecker {
  private mac1Key: Uint8Array;
  private cookieKey: Uint8Array;
  private secret = randomBytes(32);
  private secretBornMs: number;

  constructor(
    publicKey: Uint8Array,
    private readonly secretMaxAgeMs: number,
    private readonly now: () => number,
  ) {
    this.mac1Key = hash(LABEL_MAC1, publicKey);
    this.cookieKey = hash(LABEL_COOKIE, publicKey);
    this.secretBornMs = now();
  }

  setPublicKey(publicKey: Uint8Array): void {
    this.mac1Key = hash(LABEL_MAC1, publicKey);
    this.cookieKey = hash(LABEL_COOKIE, publicKey);
  }

  checkMac1(msg: Uint8Array): boolean {
    const off = mac1Offset(msg);
    return equalBytes(mac(this.mac1Key, msg.subarray(0, off)), msg.subarray(off, off + MAC_LEN));
  }

  checkMac2(msg: Uint8Array, source: Uint8Array): boolean {
    const off = mac2Offset(msg);
    return equalBytes(mac(this.cookieFor(source), msg.subarray(0, off)), msg.subarray(off, off + MAC_LEN));
  }

  /** A cookie reply (type 3) to `msg` (whose sender index is at byte 4). */
  createReply(msg: Uint8Array, source: Uint8Array): Uint8Array {
    const reply = new Uint8Array(COOKIE_REPLY_SIZE);
    writeHeader(reply, MESSAGE_COOKIE_REPLY);
    reply.set(msg.subarray(4, 8), COOKIE_RECEIVER);
    const nonce = randomBytes(XNONCE_LEN);
    reply.set(nonce, COOKIE_NONCE);
    const off = mac1Offset(msg);
    reply.set(xaeadSeal(this.cookieKey, nonce, this.cookieFor(source), msg.subarray(off, off + MAC_LEN)), COOKIE_SEALED);
    return reply;
  }

  private cookieFor(source: Uint8Array): Uint8Array {
    if (this.now() - this.secretBornMs >= this.secretMaxAgeMs) {
      this.secret = randomBytes(32);
      this.secretBornMs = this.now();
    }
    return mac(this.secret, source);
  }
}

/** The sending side (one per peer): stamps MACs on our handshake messages and stores cookies we receive. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private cookie: Uint8Array | undefined;
  private cookieReceivedMs = 0;
  private lastMac1: Uint8Array | undefined;

  constructor(
    remotePublicKey: Uint8Array,
    private readonly cookieMaxAgeMs: number,
    private readonly now: () => number,
  ) {
    this.mac1Key = hash(LABEL_MAC1, remotePublicKey);
    this.cookieKey = hash(LABEL_COOKIE, remotePublicKey);
  }

  /** Fills mac1 and (with a fresh cookie) mac2 of a handshake message in place. */
  addMacs(msg: Uint8Array): void {
    const off1 = mac1Offset(msg);
    const m1 = mac(this.mac1Key, msg.subarray(0, off1));
    msg.set(m1, off1);
    this.lastMac1 = m1;
    const off2 = mac2Offset(msg);
    if (this.cookie && this.now() - this.cookieReceivedMs < this.cookieMaxAgeMs) msg.set(mac(this.cookie, msg.subarray(0, off2)), off2);
    else msg.fill(0, off2);
  }

  /** Decrypts a cookie reply to the last message we sent; false if it does not authenticate. */
  consumeReply(reply: Uint8Array): boolean {
    if (reply.length !== COOKIE_REPLY_SIZE || !this.lastMac1) return false;
    const cookie = xaeadOpen(
      this.cookieKey,
      reply.subarray(COOKIE_NONCE, COOKIE_NONCE + XNONCE_LEN),
      reply.subarray(COOKIE_SEALED),
      this.lastMac1,
    );
    if (!cookie) return false;
    this.cookie = cookie;
    this.cookieReceivedMs = this.now();
    return true;
  }
}
