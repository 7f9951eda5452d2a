/** Per-peer state of a Device: configuration, keypairs, handshake, staged packets and timer deadlines. */
import type { BindEndpoint } from './bind.js';
import { CookieGenerator } from './cookie.js';
import type { Keypair } from './keypair.js';
import type { InitiatorState } from './noise.js';
import { ZERO_PSK } from './noise.js';

/** Packets queued while no usable keypair exists (wireguard-go's QueueStagedSize); the oldest are dropped. */
export const MAX_STAGED_PACKETS = 128;

export class Peer {
  presharedKey: Uint8Array = ZERO_PSK;
  allowedIps: string[] = [];
  endpoint: BindEndpoint | undefined;
  persistentKeepaliveSec = 0;

  /** current: used to send; previous: still accepted after a rekey; next: responder's, awaiting first data (§5.4.5). */
  current: Keypair | undefined;
  previous: Keypair | undefined;
  next: Keypair | undefined;

  /** Our outstanding initiation, if any. */
  initiation: InitiatorState | undefined;
  /** Newest TAI64N accepted from this peer (replayed initiations must be newer). */
  lastTimestamp: Uint8Array = new Uint8Array(12);
  lastInitiationConsumedMs = -Infinity;
  lastInitiationSentMs = -Infinity;
  handshakeAttempts = 0;

  staged: Uint8Array[] = [];
  lastHandshakeMs: number | undefined;
  rxBytes = 0;
  txBytes = 0;

  // Timer deadlines in ms since the epoch; 0 = not armed (whitepaper §6, wireguard-go timers.go).
  retransmitAt = 0;
  sendKeepaliveAt = 0;
  needAnotherKeepalive = false;
  newHandshakeAt = 0;
  zeroKeysAt = 0;
  persistentKeepaliveAt = 0;

  constructor(
    readonly publicKey: Uint8Array,
    /** DH(S_priv_local, S_pub_peer), needed by every handshake with this peer. */
    public staticStatic: Uint8Array,
    readonly cookies: CookieGenerator,
  ) {}

  stage(packet: Uint8Array): void {
    if (this.staged.length >= MAX_STAGED_PACKETS) this.staged.shift();
    this.staged.push(packet);
  }
}
