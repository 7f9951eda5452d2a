/**
 * Runs netcheck inside a netlab namespace and prints the report as JSON.
 *   netcheck-agent.ts DERPMAP_FILE [PORT] [nat64-map]
 * With "nat64-map", the relay map is first rewritten through the NAT64 prefix learned
 * from DNS64 (nat64DerpMap), as the engine does on an IPv6-only network.
 */
import { readFileSync } from 'node:fs';
import { discoverNat64Prefixes, nat64DerpMap } from '../../../src-main/magicsock/nat64.js';
import { netcheck } from '../../../src-main/magicsock/netcheck.js';
import type { DerpMap } from '../../../src-main/protocol/derpmap.js';

const [file, port, mode] = process.argv.slice(2);
let derpMap = JSON.parse(readFileSync(file, 'utf8')) as DerpMap;
if (mode === 'nat64-map') {
  const [prefix] = await discoverNat64Prefixes();
  if (!prefix) throw new Error('no NAT64 prefix learned');
  derpMap = nat64DerpMap(prefix, derpMap);
}
const report = await netcheck({ derpMap, port: port ? Number(port) : undefined });
process.stdout.write(`${JSON.stringify(report)}\n`);
