import { DerpClient, type DerpClientOptions } from '../../src-main/derp/client.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';

export const hex = (k: Uint8Array) => Buffer.from(k).toString('hex');

/** A connected client plus an inbox of what it received. */
export async function connectClient(url: string, extra: Partial<DerpClientOptions> = {}) {
  const keys = generateKeyPair();
  const client = new DerpClient({ url, privateKey: keys.privateKey, ...extra });
  const inbox: { src: string; data: Buffer }[] = [];
  const waiters: (() => void)[] = [];
  client.onPacket((src, data) => {
    inbox.push({ src: hex(src), data: Buffer.from(data) });
    for (const w of waiters.splice(0)) w();
  });
  await client.connect();
  const waitFor = async (n: number, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    while (inbox.length < n) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} packets (have ${inbox.length})`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { client, keys, inbox, waitFor };
}

export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
