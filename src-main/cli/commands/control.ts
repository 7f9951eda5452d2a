import { readFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { OidcOptions } from '../../control/oidc.js';
import { ControlServer } from '../../control/server.js';
import { DEFAULT_SOCKET } from '../../engine/localapi-client.js';
import { DEFAULT_PORT, type Node } from '../../engine/node.js';
import { runDaemon } from './node.js';

interface ServeOptions {
  dataDir: string;
  listen: string;
  derp: boolean;
  publicHost?: string;
  publicHostAlt?: string;
  oidcIssuer?: string;
  oidcClientId?: string;
  oidcClientSecret?: string;
  oidcExternalUrl?: string;
  requireApproval?: boolean;
}

/** SSO settings from the flags; the client secret preferably from PIERCE_OIDC_CLIENT_SECRET (flags show in `ps`). */
function oidcOptions(o: ServeOptions): OidcOptions | undefined {
  const clientSecret = o.oidcClientSecret ?? process.env.PIERCE_OIDC_CLIENT_SECRET;
  if (!o.oidcIssuer) {
    if (o.oidcClientId || o.oidcClientSecret || o.requireApproval) throw new Error('--oidc-client-id, --oidc-client-secret and --require-approval need --oidc-issuer');
    return undefined;
  }
  if (!o.oidcClientId) throw new Error('--oidc-issuer needs --oidc-client-id');
  return { issuer: o.oidcIssuer, clientId: o.oidcClientId, clientSecret, externalUrl: o.oidcExternalUrl };
}

async function serve(o: ServeOptions, handleSignals = true): Promise<ControlServer> {
  const server = await ControlServer.start({ dataDir: o.dataDir, listen: o.listen, derp: o.derp, publicHost: o.publicHost, publicHostAlt: o.publicHostAlt, oidc: oidcOptions(o), requireApproval: o.requireApproval });
  if (handleSignals) {
    const stop = () => void server.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
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
    .option('--public-host-alt <ip>', 'a second address of this host: nodes STUN both to detect NATs that map per destination')
    .option('--no-derp', 'do not embed the DERP relay and STUN server')
    .option('--oidc-issuer <url>', 'SSO: OpenID Connect issuer; nodes without an auth key log in through it')
    .option('--oidc-client-id <id>', 'SSO: client id registered at the issuer (redirect URI <server URL>/oidc/callback)')
    .option('--oidc-client-secret <secret>', 'SSO: client secret (better: env PIERCE_OIDC_CLIENT_SECRET)')
    .option('--oidc-external-url <url>', 'SSO: URL browsers reach this server at, if not the listen address')
    .option('--require-approval', 'SSO: nodes stay unauthorized until an admin approves them')
    .action(async (o: ServeOptions) => {
      await serve(o);
    });
  program
    .command('start')
    .description('embedded default: coordination server with relay, STUN and SQLite, and this machine\'s node joined to it')
    .option('--listen <addr>', 'HOST:PORT to listen on', '0.0.0.0:8080')
    .option('--socket <path>', 'LocalAPI socket of the node', DEFAULT_SOCKET)
    .option('--no-node', 'run only the coordination server')
    .action(async (o: { listen: string; socket: string; node: boolean }) => {
      const dataDir = process.env.PIERCE_HOME ?? (process.cwd() === homedir() ? join(homedir(), '.pierce') : join(process.cwd(), '.pierce'));
      const server = await serve({ dataDir, listen: o.listen, derp: true }, !o.node);
      const adminKey = readFileSync(join(dataDir, 'admin.key'), 'utf8').trim();
      process.stdout.write(
        [
          `Pierce coordination server at ${server.url} (data in ${dataDir})`,
          `Admin API key in ${join(dataDir, 'admin.key')}; join another node with a pre-auth key:`,
          `  pierce admin --server ${server.url} --data-dir ${dataDir} preauthkey create --user you@example.com`,
          `  then on the other machine: pierce up --server http://<this host>:${new URL(server.url).port} --auth-key <key>`,
          '',
        ].join('\n'),
      );
      if (!o.node) return;
      const node = await runDaemon({ stateDir: join(dataDir, 'node'), socket: o.socket, port: DEFAULT_PORT, alsoClose: () => server.close() });
      if ((await waitSettled(node)).backendState !== 'NeedsLogin') return;
      const { key } = await adminCall<{ key: string }>(server.url, adminKey, '/api/preauthkeys', { user: `${userInfo().username}@localhost`, expiresInS: 600 });
      try {
        await node.up({ controlUrl: server.url, authKey: key, hostname: hostname().split('.')[0].replace(/[^A-Za-z0-9-]/g, '-') || 'local' });
        const st = node.status();
        process.stdout.write(`This machine joined as ${st.self?.name} ${st.self?.addresses.join(' ')}; try \`pierce status\`.\n`);
      } catch (err) {
        process.stderr.write(`pierce start: this machine's node could not join: ${(err as Error).message}\nThe coordination server keeps running.\n`);
      }
    });
}

/** The node's rejoin (if it was up before) runs in the background; wait until it settles. */
async function waitSettled(node: Node): Promise<{ backendState: string }> {
  for (let i = 0; i < 100 && node.status().backendState === 'Starting'; i++) await new Promise((r) => setTimeout(r, 100));
  return node.status();
}

async function adminCall<T>(base: string, adminKey: string, path: string, body: unknown): Promise<T> {
  const res = await fetch(new URL(path, base), { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const value = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`admin API ${path}: ${value.error ?? res.status}`);
  return value;
}
