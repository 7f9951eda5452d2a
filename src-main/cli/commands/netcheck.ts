import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { LocalApiClient } from '../../engine/localapi-client.js';
import { netcheck, type NetcheckReport } from '../../magicsock/netcheck.js';
import type { DerpMap } from '../../protocol/derpmap.js';

function format(r: NetcheckReport): string {
  const lines = [
    'Report:',
    `  * UDP: ${r.udp}`,
    `  * IPv4: ${r.ipv4 ? `yes, ${r.globalV4}` : 'no'}`,
    `  * IPv6: ${r.ipv6 ? `yes, ${r.globalV6}` : 'no'}`,
    `  * MappingVariesByDestIP: ${r.mappingVariesByDestIP ?? 'unknown (needs two STUN servers at different addresses)'}`,
    `  * PortMapping: ${r.portMapping ? (['upnp', 'natpmp', 'pcp'] as const).filter((k) => r.portMapping![k]).join(', ') || 'none' : 'not checked'}`,
    `  * Hairpinning: ${r.hairpinning ?? 'unknown (no public IPv4 mapping)'}`,
    `  * NAT64 prefix: ${r.nat64Prefix ?? 'none'}`,
    `  * Nearest relay: ${r.preferredRegion ?? 'none reachable'}`,
    '  * Relay latency:',
    ...Object.entries(r.regionLatencyMs).map(([id, ms]) => `    - region ${id}: ${ms.toFixed(1)} ms (${r.regionLatencyVia[Number(id)]})`),
    `  * Took ${r.durationMs.toFixed(0)} ms`,
  ];
  return lines.join('\n');
}

/** `pierce netcheck [--json] [--derp-map FILE]`: against the daemon's relay map, or a given one. */
export function register(program: Command): void {
  program
    .command('netcheck')
    .description('report UDP, IPv4/IPv6, public addresses, NAT mapping behaviour and relay latencies')
    .option('--json', 'print the report as JSON')
    .option('--derp-map <file>', 'use this relay map (JSON) instead of asking the running daemon')
    .action(async (opts: { json?: boolean; derpMap?: string }) => {
      let report: NetcheckReport;
      if (opts.derpMap) {
        let map: DerpMap;
        try {
          map = JSON.parse(readFileSync(opts.derpMap, 'utf8')) as DerpMap;
        } catch (err) {
          throw new Error(`cannot read relay map ${opts.derpMap}: ${(err as Error).message}`, { cause: err });
        }
        if (!map || typeof map.regions !== 'object') throw new Error(`${opts.derpMap}: not a relay map (expected {"regions": {...}})`);
        report = await netcheck({ derpMap: map });
      } else {
        report = (await new LocalApiClient().netcheck()) as NetcheckReport;
      }
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : format(report)}\n`);
    });
}
