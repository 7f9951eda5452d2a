/** Shared setup for magicsock tests: a real relay+STUN server and its one-region relay map. */
import { serveDerp, type ServedDerp } from '../../src-main/derp/server.js';
import type { DerpMap } from '../../src-main/protocol/derpmap.js';

export async function startRelay(host = '127.0.0.1', port = 0): Promise<{ relay: ServedDerp; derpMap: DerpMap }> {
  const relay = await serveDerp({ listen: `${host}:${port}`, stunPort: port === 0 ? 0 : 3478, stunHost: host });
  const derpMap: DerpMap = {
    regions: {
      1: {
        regionId: 1,
        regionCode: 'lab',
        regionName: 'Lab relay',
        nodes: [{ name: '1a', regionId: 1, hostName: host, ipv4: host, derpPort: relay.port, insecureHttp: true, stunPort: relay.stun!.port }],
      },
    },
  };
  return { relay, derpMap };
}
