/** A relay (DERP on TCP 443, STUN on UDP 3478) for netlab tests; prints its relay map. */
import { serveDerp } from '../../src-main/derp/server.js';

const host = process.argv[2];
const relay = await serveDerp({ listen: `${host}:443`, stunPort: 3478, stunHost: host });
const derpMap = { regions: { 1: { regionId: 1, regionCode: 'lab', regionName: 'Lab relay', nodes: [{ name: '1a', regionId: 1, hostName: host, ipv4: host, derpPort: 443, insecureHttp: true, stunPort: 3478 }] } } };
process.stdout.write(`DERPMAP ${JSON.stringify(derpMap)}\n`);
process.on('SIGTERM', () => void relay.close().then(() => process.exit(0)));
