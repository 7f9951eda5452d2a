/**
 * Anti-replay sliding window after RFC 6479 ("IPsec Anti-Replay Algorithm without Bit
 * Shifting"): a ring of 32-bit words; advancing the window only clears the words it
 * skips, so a packet costs O(1). With 256 words the window is (256 - 1) * 32 = 8160
 * counters, the same order as wireguard-go (8128) and Linux (8192 - 64); one word is
 * kept as slack so the word being cleared is never inside the window.
 */
const WORD_BITS = 32;
const RING_WORDS = 256;
export const REPLAY_WINDOW_SIZE = (RING_WORDS - 1) * WORD_BITS;

export class ReplayWindow {
  private readonly ring = new Uint32Array(RING_WORDS);
  /** Greatest counter accepted so far (valid when `any`). */
  private greatest = 0;
  private any = false;

  /** Accepts (and records) `counter` if it was never seen and is inside the window. */
  accept(counter: number): boolean {
    const word = Math.floor(counter / WORD_BITS);
    if (!this.any || counter > this.greatest) {
      const top = this.any ? Math.floor(this.greatest / WORD_BITS) : word - RING_WORDS;
      const skip = Math.min(word - top, RING_WORDS);
      for (let i = 1; i <= skip; i++) this.ring[(word - skip + i) % RING_WORDS] = 0;
      this.greatest = counter;
      this.any = true;
    } else if (this.greatest - counter >= REPLAY_WINDOW_SIZE) {
      return false;
    }
    const slot = word % RING_WORDS;
    const bit = 1 << (counter % WORD_BITS);
    if (this.ring[slot] & bit) return false;
    this.ring[slot] |= bit;
    return true;
  }
}
