/**
 * The netcheck probes for the hard cases: which port-mapping protocols the gateway
 * speaks, and the NAT64 prefix (if this is an IPv6-only network with DNS64). Both run in
 * parallel with netcheck's STUN probes; the hairpin check (hairpin.ts) runs after STUN,
 * since it needs our public address.
 */
import { type DiscoverOptions, discoverNat64Prefixes, formatNat64Prefix } from './nat64.js';
import { Portmapper, type ProbeResult } from './portmap/portmapper.js';

export interface HardCaseOptions {
  /** Probe the gateway for UPnP IGD / NAT-PMP / PCP (default on; false skips it). */
  portmap?: false | { gateway?: string; timeoutMs?: number };
  /** Look up ipv4only.arpa for a NAT64 prefix (default on; false skips it). */
  nat64?: false | DiscoverOptions;
  /** Send to our own public address to see if the NAT hairpins (default on). */
  hairpin?: false | { timeoutMs?: number };
}

/** `{ upnp, natpmp, pcp }` availability for the mapping of `localPort`; undefined when skipped. */
export async function portMappingAvailability(localPort: number, o: HardCaseOptions['portmap']): Promise<ProbeResult | undefined> {
  if (o === false) return undefined;
  const pm = new Portmapper({ localPort, gateway: o?.gateway, timeoutMs: o?.timeoutMs });
  try {
    return await pm.probe();
  } finally {
    await pm.close();
  }
}

/** The preferred NAT64 prefix as "prefix/len", or undefined (no DNS64, or skipped). */
export async function nat64PrefixText(o: HardCaseOptions['nat64']): Promise<string | undefined> {
  if (o === false) return undefined;
  const [first] = await discoverNat64Prefixes(o);
  return first && formatNat64Prefix(first);
}
