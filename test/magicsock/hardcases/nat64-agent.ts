/**
 * On an IPv6-only host: learn the NAT64 prefix from DNS64 (ipv4only.arpa), synthesize
 * the IPv4 STUN server's address under it, and ask that server (coturn) for our mapping.
 *   nat64-agent.ts STUN_IPV4 STUN_PORT   → {"prefixes":[...],"target":"[v6]:port","mapped":"ip:port"}
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { bindingRequest, parseBindingResponse } from '../../../src-main/derp/stun.js';
import { splitEndpoint } from '../../../src-main/magicsock/disco.js';
import { discoverNat64Prefixes, formatNat64Prefix, mapEndpointsToNat64 } from '../../../src-main/magicsock/nat64.js';

const [stunIp, stunPort] = process.argv.slice(2);
const prefixes = await discoverNat64Prefixes();
if (!prefixes.length) throw new Error('no NAT64 prefix learned from ipv4only.arpa');
const [target] = mapEndpointsToNat64(prefixes[0], [`${stunIp}:${stunPort}`]);
const { host, port } = splitEndpoint(target);
const sock = createSocket({ type: 'udp6', ipv6Only: true });
await new Promise<void>((r) => sock.bind(0, r));
const txId = new Uint8Array(randomBytes(12));
const mapped = await new Promise<string>((resolve, reject) => {
  const retry = setInterval(() => sock.send(bindingRequest(txId), port, host), 300);
  const fail = setTimeout(() => reject(new Error(`no STUN answer from ${target}`)), 5000);
  sock.on('message', (msg) => {
    try {
      const r = parseBindingResponse(msg, txId);
      clearInterval(retry);
      clearTimeout(fail);
      resolve(`${r.ip}:${r.port}`);
    } catch {
      // not our answer
    }
  });
  sock.send(bindingRequest(txId), port, host);
});
sock.close();
process.stdout.write(`${JSON.stringify({ prefixes: prefixes.map(formatNat64Prefix), target, mapped })}\n`);
