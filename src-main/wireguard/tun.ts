/**
 * The TUN side of a WireGuard device (cf. wireguard-go's tun.Device): batched packet
 * I/O so an implementation can read or write many packets per system call or per
 * worker-thread hop. Implementations: native/ (Linux /dev/net/tun, macOS utun,
 * Windows Wintun) and in-memory fakes for tests.
 */
export interface TunDevice {
  readonly name: string;
  readonly mtu: number;
  /** Starts delivering batches of IP packets the OS sends into the tunnel. Called once. */
  start(onPackets: (packets: Uint8Array[]) => void, onError?: (err: Error) => void): void;
  /** Hands a batch of decrypted IP packets to the OS. */
  write(packets: Uint8Array[]): void;
  /** Replaces the CIDRs routed into the tunnel, where the device can change them live. */
  setRoutes?(routes: string[]): Promise<void>;
  close(): Promise<void>;
}
