/** Typed errors for TUN creation, with messages that name the fix. */
export type TunErrorCode = 'permission' | 'missing-device' | 'busy' | 'unsupported-platform' | 'config' | 'io';

export class TunError extends Error {
  constructor(
    readonly code: TunErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TunError';
  }
}

export const PRIVILEGE_HINT = 'run as root or grant CAP_NET_ADMIN: sudo setcap cap_net_admin+ep $(which node)';

export interface TunOptions {
  /** Interface name; the kernel picks one (e.g. pierce0) when omitted. At most 15 bytes. */
  name?: string;
  /** Default 1280, the IPv6 minimum link MTU (RFC 8200 §5), which also fits every WireGuard path. */
  mtu?: number;
  /** CIDRs assigned to the interface, e.g. "10.0.0.1/24", "fd00::1/64". */
  addresses?: string[];
  /** CIDRs routed into the interface. */
  routes?: string[];
  /** Linux: write(2) from the calling thread ('direct', default) or from a writer thread ('worker'). */
  writer?: 'direct' | 'worker';
  /**
   * Linux: let the kernel hand over TCP super-packets (IFF_VNET_HDR + TSO, see tun-offload.ts),
   * split into MTU-sized packets in the reader thread: one read(2) per up to 64 KiB instead of
   * one per packet. Default false.
   */
  offload?: boolean;
}

export const DEFAULT_MTU = 1280;
