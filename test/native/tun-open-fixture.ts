/** Tries to create a TUN and prints the outcome as JSON (used with reduced privileges). argv: <name>. */
import { createTun } from '../../native/index.js';

try {
  const tun = await createTun({ name: process.argv[2] });
  await tun.close();
  process.stdout.write(`${JSON.stringify({ created: true })}\n`);
} catch (err) {
  const e = err as Error & { code?: string };
  process.stdout.write(`${JSON.stringify({ created: false, code: e.code, message: e.message })}\n`);
}
