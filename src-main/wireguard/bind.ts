/**
 * The transport side of a WireGuard device (cf. wireguard-go's conn.Bind). The device
 * never cares what carries its datagrams: plain UDP sockets, or magicsock, which
 * also multiplexes DERP relays, STUN and discovery messages on the same socket and
 * picks the path per peer.
 */
export interface BindEndpoint {
  /** Stable text form, e.g. "192.0.2.1:51820", "[2001:db8::1]:51820", or a magicsock peer id. */
  toString(): string;
}

export interface ReceivedDatagram {
  data: Uint8Array;
  from: BindEndpoint;
}

export interface Bind {
  /** Opens the transport and starts delivering received datagrams in batches. */
  open(onReceive: (datagrams: ReceivedDatagram[]) => void): Promise<void>;
  /** Sends a batch of datagrams to one endpoint. Never throws for network errors (WireGuard retries). */
  send(datagrams: Uint8Array[], to: BindEndpoint): void;
  /** Parses a configured endpoint ("host:port" for UDP; peer ids for magicsock). */
  parseEndpoint(text: string): BindEndpoint;
  /** Local UDP port, when there is one. */
  readonly port: number | undefined;
  close(): Promise<void>;
}
