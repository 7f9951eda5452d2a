// Default IPv4 gateway discovery from the Linux routing table (/proc/net/route).
import { readFile } from 'node:fs/promises';

/** linux/route.h: RTF_UP and RTF_GATEWAY flags. */
const RTF_UP = 0x1;
const RTF_GATEWAY = 0x2;

/**
 * Parses /proc/net/route text and returns the default route's gateway with the lowest metric.
 * Addresses there are 32-bit hex in host (little-endian on every Linux we run on) byte order.
 */
export function parseProcNetRoute(table: string): string | undefined {
  let best: { gw: string; metric: number } | undefined;
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [, dest, gwHex, flagsHex, , , metricStr, mask] = f as [string, string, string, string, string, string, string, string];
    const flags = parseInt(flagsHex, 16);
    if (dest !== '00000000' || mask !== '00000000' || !(flags & RTF_UP) || !(flags & RTF_GATEWAY)) continue;
    if (!/^[0-9A-Fa-f]{8}$/.test(gwHex)) continue;
    const n = parseInt(gwHex, 16);
    const gw = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
    const metric = Number(metricStr);
    if (!best || metric < best.metric) best = { gw, metric };
  }
  return best?.gw;
}

export async function defaultGateway(routeFile = '/proc/net/route'): Promise<string | undefined> {
  try {
    return parseProcNetRoute(await readFile(routeFile, 'utf8'));
  } catch {
    return undefined;
  }
}
