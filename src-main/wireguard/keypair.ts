/** One session's transport state (whitepaper §5.4.5/§5.4.6): keys, indices, counters, replay window. */
import type { AeadKey } from './aead.js';
import { ReplayWindow } from './replay.js';

export class Keypair {
  /** The next counter to send with; never reused (whitepaper §5.4.6). */
  sendCounter = 0;
  readonly replay = new ReplayWindow();
  /** When data under this keypair was last accepted (picks which old keypair to keep on rekey). */
  lastReceivedMs = 0;

  constructor(
    readonly sendKey: AeadKey,
    readonly receiveKey: AeadKey,
    /** The initiator of the handshake owns time-based rekeying (§6.2), so both sides do not rekey at once. */
    readonly isInitiator: boolean,
    readonly createdMs: number,
    readonly localIndex: number,
    readonly remoteIndex: number,
    /** Creation order within the device: the newer of two keypairs wins `current`. */
    readonly generation: number,
  ) {}
}
