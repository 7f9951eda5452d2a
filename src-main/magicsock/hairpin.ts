/**
 * Hairpinning (RFC 4787 §6): does our NAT deliver a packet sent from inside to our own
 * public mapping back inside? Two nodes behind the same NAT (e.g. one carrier NAT) can
 * then talk through their public endpoints. Checked by sending a random token from a
 * second socket to the public ip:port that STUN reported for `owner`, and watching
 * whether `owner` receives it.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { splitEndpoint } from './disco.js';

export const HAIRPIN_TIMEOUT_MS = 500;
/** Three sends spread over the timeout, so one lost datagram is not a "no". */
const SENDS = 3;
const TOKEN_LEN = 16;

/** True when a datagram sent to `mapped` ("ip:port", IPv4) arrives on `owner` within the timeout. */
export async function checkHairpin(owner: Socket, mapped: string, o: { bindAddress?: string; timeoutMs?: number } = {}): Promise<boolean> {
  const { host, port } = splitEndpoint(mapped);
  const timeoutMs = o.timeoutMs ?? HAIRPIN_TIMEOUT_MS;
  const token = randomBytes(TOKEN_LEN);
  const tx = createSocket('udp4');
  tx.on('error', () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      tx.once('error', reject);
      tx.bind({ port: 0, address: o.bindAddress }, () => resolve());
    });
    return await new Promise<boolean>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const finish = (v: boolean) => {
        for (const t of timers) clearTimeout(t);
        owner.off('message', onMsg);
        resolve(v);
      };
      const onMsg = (msg: Buffer) => {
        if (msg.equals(token)) finish(true);
      };
      owner.on('message', onMsg);
      for (let i = 0; i < SENDS; i++) timers.push(setTimeout(() => tx.send(token, port, host), (i * timeoutMs) / (SENDS + 1)));
      timers.push(setTimeout(() => finish(false), timeoutMs));
    });
  } catch {
    return false;
  } finally {
    tx.close();
  }
}
