import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ControlServer } from '../../control/server.js';

interface ServeOptions {
  dataDir: string;
  listen: string;
  derp: boolean;
  publicHost?: string;
}

async function serve(o: ServeOptions): Promise<ControlServer> {
  const server = await ControlServer.start({ dataDir: o.dataDir, listen: o.listen, derp: o.derp, publicHost: o.publicHost });
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return server;
}

export function register(program: Command): void {
  const control = program.command('control').description('coordination server');
  control
    .command('serve')
    .description('run the coordination server (HTTP, SQLite store, embedded relay + STUN unless --no-derp)')
    .requiredOption('--data-dir <dir>', 'directory for the SQLite store and admin key')
    .option('--listen <addr>', 'HOST:PORT to listen on', '0.0.0.0:8080')
    .option('--public-host <host>', 'host name nodes use to reach the embedded relay')
    .option('--no-derp', 'do not embed the DERP relay and STUN server')
    .action(async (o: ServeOptions) => {
      await serve(o);
    });
  program
    .command('start')
    .description('embedded default: coordination server with relay + STUN, data in $PIERCE_HOME or ./.pierce')
    .option('--listen <addr>', 'HOST:PORT to listen on', '0.0.0.0:8080')
    .action(async (o: { listen: string }) => {
      const dataDir = process.env.PIERCE_HOME ?? (process.cwd() === homedir() ? join(homedir(), '.pierce') : join(process.cwd(), '.pierce'));
      const server = await serve({ dataDir, listen: o.listen, derp: true });
      const key = server.adminKey || `(see ${join(dataDir, 'admin.key')})`;
      process.stdout.write(
        [
          `Pierce coordination server at ${server.url} (data in ${dataDir})`,
          `Admin API key: ${key}`,
          'To join a node, create a pre-auth key:',
          `  curl -X POST -H "authorization: Bearer <admin key>" -d '{"user":"you@example.com"}' ${server.url}/api/preauthkeys`,
          '',
        ].join('\n'),
      );
    });
}
