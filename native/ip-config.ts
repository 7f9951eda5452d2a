/**
 * Interface configuration through iproute2's `ip` (execFile, no shell): MTU, addresses,
 * routes and link state. Arguments are validated first so a bad CIDR fails with a clear
 * message instead of an `ip` usage dump.
 */
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import { TunError } from './tun-errors.js';

const run = promisify(execFile);

/** Checks "addr/len" (or a bare address) and returns it unchanged. */
export function checkCidr(text: string): string {
  const [addr, len, extra] = text.split('/');
  const family = isIP(addr ?? '');
  const max = family === 4 ? 32 : 128;
  const ok = family !== 0 && extra === undefined && (len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= max));
  if (!ok) throw new TunError('config', `not an IP address or CIDR: "${text}"`);
  return text;
}

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new TunError('config', 'the `ip` command is missing: install the Debian package iproute2');
    throw new TunError('config', `ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

export interface LinkConfig {
  mtu: number;
  addresses: string[];
  routes: string[];
}

export async function configureLink(name: string, c: LinkConfig): Promise<void> {
  const addresses = c.addresses.map(checkCidr);
  const routes = c.routes.map(checkCidr);
  await ip(['link', 'set', 'dev', name, 'mtu', String(c.mtu)]);
  for (const a of addresses) await ip(['address', 'add', a, 'dev', name]);
  await ip(['link', 'set', 'dev', name, 'up']);
  // `replace` so a route the address already implies (same prefix) is not an error.
  for (const r of routes) await addRoute(name, r);
}

/** Routes `cidr` into the interface (`replace`: idempotent). */
export function addRoute(name: string, cidr: string): Promise<void> {
  return ip(['route', 'replace', checkCidr(cidr), 'dev', name]);
}

export function deleteRoute(name: string, cidr: string): Promise<void> {
  return ip(['route', 'del', checkCidr(cidr), 'dev', name]);
}
