import { Command } from 'commander';
import { commands } from './commands/index.js';

const program = new Command('pierce')
  .description('Pierce: a self-hostable mesh VPN (WireGuard, NAT traversal, relays, ACLs)')
  .version(process.env.npm_package_version ?? '0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions();

for (const register of commands) register(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`pierce: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
