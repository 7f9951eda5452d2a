import type { Command } from 'commander';
import { generateKeyPair, keyFromBase64, keyToBase64, publicKeyOf } from '../../protocol/keys.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `pierce genkey` / `pierce pubkey`: the same contract as `wg genkey` / `wg pubkey`. */
export function register(program: Command): void {
  program
    .command('genkey')
    .description('print a new WireGuard private key (base64), like `wg genkey`')
    .action(() => {
      process.stdout.write(`${keyToBase64(generateKeyPair().privateKey)}\n`);
    });
  program
    .command('pubkey')
    .description('read a private key (base64) on stdin and print its public key, like `wg pubkey`')
    .action(async () => {
      process.stdout.write(`${keyToBase64(publicKeyOf(keyFromBase64(await readStdin())))}\n`);
    });
}
