/**
 * The relay map served by the coordination server in every netmap (cf. Tailscale's
 * DERPMap): regions of relay nodes, each with its DERP (TCP/HTTP(S)) and STUN (UDP) ports.
 */
export interface DerpNode {
  /** Unique name, e.g. "1a". */
  name: string;
  regionId: number;
  /** Hostname or IP literal used for the HTTP(S) connection (and TLS server name). */
  hostName: string;
  /** Optional IP literals to skip DNS. */
  ipv4?: string;
  ipv6?: string;
  /** DERP port; scheme is https unless `insecureHttp` (tests, loopback). */
  derpPort: number;
  insecureHttp?: boolean;
  /** STUN port on the same host; 0 disables STUN on this node. */
  stunPort: number;
}

export interface DerpRegion {
  regionId: number;
  regionCode: string;
  regionName: string;
  nodes: DerpNode[];
}

export interface DerpMap {
  regions: Record<number, DerpRegion>;
}
