/**
 * Protocol constants of whitepaper §6.1 ("Preliminaries"), §6.2 and §6.5. The Device takes
 * a `Partial<WireGuardTimers>` ONLY so tests can shrink these to milliseconds; production
 * code never overrides them.
 */

/** §6.1 — after this many messages the initiator starts a new handshake. */
export const REKEY_AFTER_MESSAGES = 2n ** 60n;
/** §6.1 — a keypair never encrypts or decrypts a message with a counter at or past this. */
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const REKEY_AFTER_TIME_MS = 120_000;
export const REJECT_AFTER_TIME_MS = 180_000;
export const REKEY_ATTEMPT_TIME_MS = 90_000;
export const REKEY_TIMEOUT_MS = 5_000;
/** §6.1 — retransmitted initiations are delayed by up to this much random jitter. */
export const REKEY_TIMEOUT_JITTER_MAX_MS = 333;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** §5.4.7 — the responder's cookie secret changes every two minutes (and cookies expire then). */
export const COOKIE_SECRET_MAX_AGE_MS = 120_000;
/** wireguard-go's HandshakeInitationRate: initiations from one peer closer than this are a flood. */
export const HANDSHAKE_INITIATION_RATE_MS = 50;

/**
 * Counters are JS Numbers, exact below 2^53. 2^53 messages would take a sender 285 years
 * at 10^6 packets/s (REJECT_AFTER_TIME ends a keypair long before), so the hot path uses
 * Number limits and a received counter >= 2^53 is rejected as if past REJECT_AFTER_MESSAGES.
 */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

export interface WireGuardTimers {
  rekeyAfterMessages: number;
  rejectAfterMessages: number;
  rekeyAfterTimeMs: number;
  rejectAfterTimeMs: number;
  rekeyAttemptTimeMs: number;
  rekeyTimeoutMs: number;
  rekeyTimeoutJitterMaxMs: number;
  keepaliveTimeoutMs: number;
  cookieSecretMaxAgeMs: number;
  handshakeInitiationRateMs: number;
}

export const DEFAULT_TIMERS: Readonly<WireGuardTimers> = {
  rekeyAfterMessages: Number(REKEY_AFTER_MESSAGES),
  rejectAfterMessages: MAX_COUNTER,
  rekeyAfterTimeMs: REKEY_AFTER_TIME_MS,
  rejectAfterTimeMs: REJECT_AFTER_TIME_MS,
  rekeyAttemptTimeMs: REKEY_ATTEMPT_TIME_MS,
  rekeyTimeoutMs: REKEY_TIMEOUT_MS,
  rekeyTimeoutJitterMaxMs: REKEY_TIMEOUT_JITTER_MAX_MS,
  keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
  cookieSecretMaxAgeMs: COOKIE_SECRET_MAX_AGE_MS,
  handshakeInitiationRateMs: HANDSHAKE_INITIATION_RATE_MS,
};

export function resolveTimers(overrides?: Partial<WireGuardTimers>): WireGuardTimers {
  const t = { ...DEFAULT_TIMERS, ...overrides };
  t.rejectAfterMessages = Math.min(t.rejectAfterMessages, MAX_COUNTER);
  t.rekeyAfterMessages = Math.min(t.rekeyAfterMessages, t.rejectAfterMessages);
  return t;
}
