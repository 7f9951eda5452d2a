// Address helpers shared by the port-mapping clients.
import dgram from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/** Returns the local address the kernel would use to reach `gateway` (no packet is sent). */
export function localAddressToward(gateway: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(isIPv6(gateway) ? 'udp6' : 'udp4');
    s.on('error', (e) => {
      s.close();
      reject(e);
    });
    s.connect(port, gateway, () => {
      const { address } = s.address();
      s.close();
      resolve(address);
    });
  });
}

/** True for addresses that can never carry a mapping: unspecified, loopback, link-local, multicast/reserved. */
export function isUnusableIPv4(ip: string): boolean {
  if (!isIPv4(ip)) return true;
  const [a, b] = ip.split('.').map(Number) as [number, number];
  return a === 0 || a === 127 || (a === 169 && b === 254) || a >= 224;
}

/**
 * True for addresses a gateway must not report as its public address: the unusable ones,
 * private (RFC 1918) and shared CGNAT space (RFC 6598). A mapping to such an address is
 * still returned but flagged, since it only helps peers inside the same outer NAT.
 */
export function isBogusExternalIPv4(ip: string): boolean {
  if (isUnusableIPv4(ip)) return true;
  const [a, b] = ip.split('.').map(Number) as [number, number];
  return a === 10 || (a === 100 && b >= 64 && b <= 127) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}
