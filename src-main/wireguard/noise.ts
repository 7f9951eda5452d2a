/**
 * The Noise_IKpsk2 handshake of whitepaper §5.4.2 (initiation) and §5.4.3 (response), and
 * the transport key derivation of §5.4.5. Pure functions over explicit state; the Device
 * owns indices, peers, MACs and timers. Message MAC fields are left zero here (cookie.ts).
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { AEAD_TAG_LEN, KEY_LEN, aeadOpen, aeadSeal, dh, hash, kdf, tai64n } from './crypto.js';
import {
  INITIATION_SIZE,
  INIT_EPHEMERAL,
  INIT_SENDER,
  INIT_STATIC,
  INIT_TIMESTAMP,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  RESPONSE_SIZE,
  RESP_EMPTY,
  RESP_EPHEMERAL,
  RESP_RECEIVER,
  RESP_SENDER,
  readU32,
  writeHeader,
  writeU32,
} from './messages.js';

const enc = new TextEncoder();
/** §5.4 — the Noise protocol name and WireGuard's identifier (the prologue). */
export const CONSTRUCTION = enc.encode('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
export const IDENTIFIER = enc.encode('WireGuard v1 zx2c4 Jason@zx2c4.com');
/** Ci = HASH(CONSTRUCTION); Hi = HASH(Ci || IDENTIFIER) — the same for every handshake. */
export const INITIAL_CHAINING_KEY = hash(CONSTRUCTION);
export const INITIAL_HASH = hash(INITIAL_CHAINING_KEY, IDENTIFIER);

const TIMESTAMP_LEN = 12;
const EMPTY = new Uint8Array(0);
export const ZERO_PSK = new Uint8Array(KEY_LEN);

export interface StaticKeys {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

/** What the initiator remembers between sending the initiation and reading the response. */
export interface InitiatorState {
  chainingKey: Uint8Array;
  hash: Uint8Array;
  ephemeralPrivate: Uint8Array;
  localIndex: number;
}

/** What the responder learned from a valid initiation. */
export interface ConsumedInitiation {
  remoteStatic: Uint8Array;
  remoteIndex: number;
  remoteEphemeral: Uint8Array;
  timestamp: Uint8Array;
  chainingKey: Uint8Array;
  hash: Uint8Array;
}

export interface SessionKeys {
  send: Uint8Array;
  receive: Uint8Array;
}

/** Builds a handshake initiation (§5.4.2). `staticStatic` is DH(S_priv_i, S_pub_r), precomputed per peer. */
export function createInitiation(
  local: StaticKeys,
  remoteStatic: Uint8Array,
  staticStatic: Uint8Array,
  localIndex: number,
  nowMs: number,
): { message: Uint8Array; state: InitiatorState } | undefined {
  const msg = new Uint8Array(INITIATION_SIZE);
  writeHeader(msg, MESSAGE_INITIATION);
  writeU32(msg, INIT_SENDER, localIndex);
  let h = hash(INITIAL_HASH, remoteStatic);
  let ck = INITIAL_CHAINING_KEY;
  const ephemeralPrivate = x25519.utils.randomSecretKey();
  const ephemeralPublic = x25519.getPublicKey(ephemeralPrivate);
  msg.set(ephemeralPublic, INIT_EPHEMERAL);
  [ck] = kdf(1, ck, ephemeralPublic);
  h = hash(h, ephemeralPublic);
  const es = dh(ephemeralPrivate, remoteStatic);
  if (!es) return undefined;
  let key: Uint8Array;
  [ck, key] = kdf(2, ck, es);
  const sealedStatic = aeadSeal(key, 0, local.publicKey, h);
  msg.set(sealedStatic, INIT_STATIC);
  h = hash(h, sealedStatic);
  [ck, key] = kdf(2, ck, staticStatic);
  const sealedTime = aeadSeal(key, 0, tai64n(nowMs), h);
  msg.set(sealedTime, INIT_TIMESTAMP);
  h = hash(h, sealedTime);
  return { message: msg, state: { chainingKey: ck, hash: h, ephemeralPrivate, localIndex } };
}

/**
 * Decrypts an initiation addressed to `local`. `staticStaticOf` returns the precomputed
 * DH(S_priv_r, S_pub_i) for a known peer, undefined for an unknown one (then we stop
 * before the second DH). Returns undefined for anything that does not authenticate.
 */
export function consumeInitiation(
  local: StaticKeys,
  msg: Uint8Array,
  staticStaticOf: (remoteStatic: Uint8Array) => Uint8Array | undefined,
): ConsumedInitiation | undefined {
  if (msg.length !== INITIATION_SIZE) return undefined;
  let h = hash(INITIAL_HASH, local.publicKey);
  let ck = INITIAL_CHAINING_KEY;
  const remoteEphemeral = msg.slice(INIT_EPHEMERAL, INIT_EPHEMERAL + KEY_LEN);
  [ck] = kdf(1, ck, remoteEphemeral);
  h = hash(h, remoteEphemeral);
  const es = dh(local.privateKey, remoteEphemeral);
  if (!es) return undefined;
  let key: Uint8Array;
  [ck, key] = kdf(2, ck, es);
  const sealedStatic = msg.subarray(INIT_STATIC, INIT_STATIC + KEY_LEN + AEAD_TAG_LEN);
  const remoteStatic = aeadOpen(key, 0, sealedStatic, h);
  if (!remoteStatic) return undefined;
  h = hash(h, sealedStatic);
  const ss = staticStaticOf(remoteStatic);
  if (!ss) return undefined;
  [ck, key] = kdf(2, ck, ss);
  const sealedTime = msg.subarray(INIT_TIMESTAMP, INIT_TIMESTAMP + TIMESTAMP_LEN + AEAD_TAG_LEN);
  const timestamp = aeadOpen(key, 0, sealedTime, h);
  if (!timestamp) return undefined;
  h = hash(h, sealedTime);
  return { remoteStatic, remoteIndex: readU32(msg, INIT_SENDER), remoteEphemeral, timestamp, chainingKey: ck, hash: h };
}

/** Builds the response (§5.4.3) and derives the responder's transport keys (§5.4.5). */
export function createResponse(
  init: ConsumedInitiation,
  presharedKey: Uint8Array,
  localIndex: number,
): { message: Uint8Array; keys: SessionKeys } | undefined {
  const msg = new Uint8Array(RESPONSE_SIZE);
  writeHeader(msg, MESSAGE_RESPONSE);
  writeU32(msg, RESP_SENDER, localIndex);
  writeU32(msg, RESP_RECEIVER, init.remoteIndex);
  const ephemeralPrivate = x25519.utils.randomSecretKey();
  const ephemeralPublic = x25519.getPublicKey(ephemeralPrivate);
  msg.set(ephemeralPublic, RESP_EPHEMERAL);
  let ck = init.chainingKey;
  let h = init.hash;
  [ck] = kdf(1, ck, ephemeralPublic);
  h = hash(h, ephemeralPublic);
  const ee = dh(ephemeralPrivate, init.remoteEphemeral);
  const se = dh(ephemeralPrivate, init.remoteStatic);
  if (!ee || !se) return undefined;
  [ck] = kdf(1, ck, ee);
  [ck] = kdf(1, ck, se);
  const [ck2, tau, key] = kdf(3, ck, presharedKey);
  h = hash(h, tau);
  const sealedEmpty = aeadSeal(key, 0, EMPTY, h);
  msg.set(sealedEmpty, RESP_EMPTY);
  const [receive, send] = kdf(2, ck2, EMPTY);
  return { message: msg, keys: { send, receive } };
}

/** Reads the response to our initiation and derives the initiator's transport keys. */
export function consumeResponse(
  local: StaticKeys,
  state: InitiatorState,
  presharedKey: Uint8Array,
  msg: Uint8Array,
): { keys: SessionKeys; remoteIndex: number } | undefined {
  if (msg.length !== RESPONSE_SIZE) return undefined;
  const remoteEphemeral = msg.subarray(RESP_EPHEMERAL, RESP_EPHEMERAL + KEY_LEN);
  let ck = state.chainingKey;
  let h = state.hash;
  [ck] = kdf(1, ck, remoteEphemeral);
  h = hash(h, remoteEphemeral);
  const ee = dh(state.ephemeralPrivate, remoteEphemeral);
  const se = dh(local.privateKey, remoteEphemeral);
  if (!ee || !se) return undefined;
  [ck] = kdf(1, ck, ee);
  [ck] = kdf(1, ck, se);
  const [ck2, tau, key] = kdf(3, ck, presharedKey);
  h = hash(h, tau);
  if (!aeadOpen(key, 0, msg.subarray(RESP_EMPTY, RESP_EMPTY + AEAD_TAG_LEN), h)) return undefined;
  const [send, receive] = kdf(2, ck2, EMPTY);
  return { keys: { send, receive }, remoteIndex: readU32(msg, RESP_SENDER) };
}
