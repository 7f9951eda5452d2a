import type { Command } from 'commander';
import { serveDerp } from '../../derp/server.js';
import { STUN_PORT } from '../../derp/stun-server.js';
import { keyFromBase64 } from '../../protocol/keys.js';
import { readFileSync } from 'node:fs';

/** `pierce derp serve`: a standalone DERP relay (+ STUN server). */
export function register(program: Command): void {
  const derp = program.command('derp').description('DERP relay (encrypted packet relay of last resort) and STUN server');
  derp
    .command('serve')
    .description('run a DERP relay over HTTP(S) and a STUN server over UDP')
    .requiredOption('--listen <addr>', 'HOST:PORT, [V6]:PORT or :PORT to serve /derp on (use 443 with TLS)')
    .option('--tls-cert <file>', 'PEM certificate chain (serve HTTPS)')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .option('--stun-port <port>', 'UDP port of the STUN server (0 disables)', String(STUN_PORT))
    .option('--mesh-with <url...>', 'URLs of the other relays of this region (http(s)://host:port/derp)')
    .option('--mesh-key <key>', 'shared secret of the region\'s relays (or PIERCE_DERP_MESH_KEY)')
    .option('--key-file <file>', 'relay private key (base64, as from `pierce genkey`); default: a new key each start')
    .option('--rate <bytesPerSecond>', 'per-client send rate limit in bytes/s (0 = none)', '0')
    .action(async (o: { listen: string; tlsCert?: string; tlsKey?: string; stunPort: string; meshWith?: string[]; meshKey?: string; keyFile?: string; rate: string }) => {
      if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
      const stunPort = Number(o.stunPort);
      const rate = Number(o.rate);
      if (!Number.isInteger(stunPort) || stunPort < 0 || stunPort > 65535) throw new Error(`--stun-port: bad port "${o.stunPort}"`);
      if (!Number.isFinite(rate) || rate < 0) throw new Error(`--rate: expected a non-negative number, got "${o.rate}"`);
      const served = await serveDerp({
        listen: o.listen,
        tlsCert: o.tlsCert,
        tlsKey: o.tlsKey,
        stunPort: stunPort === 0 ? undefined : stunPort,
        meshWith: o.meshWith,
        meshKey: o.meshKey ?? process.env.PIERCE_DERP_MESH_KEY,
        privateKey: o.keyFile ? keyFromBase64(readFileSync(o.keyFile, 'utf8')) : undefined,
        limits: rate > 0 ? { bytesPerSecond: rate } : undefined,
        log: (m) => process.stderr.write(`${m}\n`),
      });
      process.stdout.write(
        `derp: serving ${served.url} (relay key ${Buffer.from(served.derp.publicKey).toString('hex')})` +
          (served.stun ? `, STUN on UDP ${served.stun.port}` : '') + '\n',
      );
      const stop = () => {
        void served.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
}
