/** coturn (Debian `coturn`) as a foreign, plain STUN server inside a lab host. */
import type { Host, LabProcess } from './netlab.js';

export const STUN_PORT = 3478;

/** Resolves once `host` has a UDP socket bound on each `addr:port` (polls `ss`). */
export async function waitForUdpListen(host: Host, addrs: string[], port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await host.exec(['ss', '-Hnul'], { allowFail: true });
    if (addrs.every((a) => stdout.includes(`${a}:${port} `))) return;
    if (Date.now() > deadline) throw new Error(`${host.name}: nothing listening on UDP ${addrs.map((a) => `${a}:${port}`).join(', ')} after ${timeoutMs} ms:\n${stdout}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `turnserver --stun-only` listening on each given address of `host`. */
export async function startCoturn(host: Host, addrs: string[]): Promise<LabProcess> {
  // coturn prints "socket: Protocol not supported" when the kernel lacks SCTP; harmless.
  const args = ['turnserver', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '--log-file', 'stdout', '-p', String(STUN_PORT), '--no-software-attribute'];
  for (const a of addrs) args.push('-L', a);
  const p = host.spawn(args, { name: 'coturn' });
  await waitForUdpListen(host, addrs, STUN_PORT);
  return p;
}
