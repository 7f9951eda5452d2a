/**
 * createTun(): the platform's TUN device behind the TunDevice interface
 * (src-main/wireguard/tun.ts). Linux is tested; macOS utun and Windows Wintun are written
 * and type-checked but cannot run here.
 */
import type { TunDevice } from '../src-main/wireguard/tun.js';
import { TunError, type TunOptions } from './tun-errors.js';

export { TunError, PRIVILEGE_HINT, DEFAULT_MTU, type TunOptions } from './tun-errors.js';

export async function createTun(o: TunOptions = {}): Promise<TunDevice> {
  switch (process.platform) {
    case 'linux':
      return (await import('./linux-tun.js')).LinuxTun.create(o);
    case 'darwin':
      return (await import('./darwin-utun.js')).DarwinUtun.create(o);
    case 'win32':
      return (await import('./windows-wintun.js')).WintunTun.create(o);
    default:
      throw new TunError('unsupported-platform', `TUN devices are not supported on ${process.platform} (Linux, macOS and Windows are)`);
  }
}
