/**
 * Choosing among a peer's direct candidates, as pure functions so the policy is easy
 * to read and test. A candidate is usable while pongs keep coming (TRUST_UDP_ADDR_MS);
 * a new one replaces the current best only when clearly better, so the path does not
 * flap between two similar ones; on near-ties IPv6 and LAN addresses win.
 */
import { isIPv6 } from 'node:net';
import { splitEndpoint } from './disco.js';

/** How long a pong vouches for a direct path (as Tailscale's trustUDPAddrDuration). */
export const TRUST_UDP_ADDR_MS = 6_500;
/** Heartbeat pings on the best path while it is in use. */
export const HEARTBEAT_MS = 3_000;
/** Re-run discovery (pings to every candidate + call-me-maybe) at most this often. */
export const DISCOVERY_INTERVAL_MS = 5_000;
/** A new path must be this much faster (ratio) and by this much (ms) to replace the current one. */
export const BETTER_RATIO = 0.8;
export const BETTER_MIN_MS = 1;
/**
 * Latencies within this many ms (or within 1 − BETTER_RATIO of the current one) are a tie,
 * decided by preference: a few ms of scheduling jitter on a busy host must not hand a
 * dual-stack pair its IPv4 path just because that pong was handled first.
 */
export const TIE_MS = 5;

export interface Candidate {
  endpoint: string;
  latencyMs: number;
  lastPong: number;
}

function isPrivate(endpoint: string): boolean {
  const { host } = splitEndpoint(endpoint);
  if (isIPv6(host)) return /^f[cd]/i.test(host) || /^fe80/i.test(host);
  return /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(host);
}

/** Tie-break preference: IPv6 over IPv4, then LAN over public. */
function preference(endpoint: string): number {
  return (isIPv6(splitEndpoint(endpoint).host) ? 2 : 0) + (isPrivate(endpoint) ? 1 : 0);
}

export function isTrusted(c: Candidate | undefined, now: number): c is Candidate {
  return !!c && now - c.lastPong < TRUST_UDP_ADDR_MS;
}

/** Whether `next` should replace `current` as the best direct path. */
export function betterPath(next: Candidate, current: Candidate | undefined, now: number): boolean {
  if (!isTrusted(current, now)) return true;
  if (next.endpoint === current.endpoint) return true;
  const faster = next.latencyMs < current.latencyMs * BETTER_RATIO && current.latencyMs - next.latencyMs >= BETTER_MIN_MS;
  if (faster) return true;
  const tie = Math.abs(next.latencyMs - current.latencyMs) < Math.max(TIE_MS, current.latencyMs * (1 - BETTER_RATIO));
  return tie && preference(next.endpoint) > preference(current.endpoint);
}
