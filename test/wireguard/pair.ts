/** Two Devices ("a" at 10.0.0.1, "b" at 10.0.0.2) on a FakeNet, for device-level tests. */
import { Device, type DeviceOptions } from '../../src-main/wireguard/device.js';
import { generateKeyPair, type KeyPair } from '../../src-main/protocol/keys.js';
import type { WireGuardTimers } from '../../src-main/wireguard/timers.js';
import { FakeNet, FakeTun } from './fakes.js';

export interface Pair {
  net: FakeNet;
  a: Device;
  b: Device;
  tunA: FakeTun;
  tunB: FakeTun;
  keysA: KeyPair;
  keysB: KeyPair;
  logs: string[];
  close(): Promise<void>;
}

export interface PairOptions {
  psk?: Uint8Array;
  /** Preshared key on b's side when it should differ from a's. */
  pskB?: Uint8Array;
  timers?: Partial<WireGuardTimers>;
  aead?: DeviceOptions['aead'];
  loadThresholdB?: number;
  keepaliveA?: number;
  /** Whether b knows a's endpoint (default false: b learns it from the handshake). */
  bKnowsA?: boolean;
}

export async function makePair(o: PairOptions = {}): Promise<Pair> {
  const net = new FakeNet();
  const keysA = generateKeyPair();
  const keysB = generateKeyPair();
  const tunA = new FakeTun('tunA');
  const tunB = new FakeTun('tunB');
  const logs: string[] = [];
  const a = new Device({ privateKey: keysA.privateKey, tun: tunA, bind: net.bind('a'), timers: o.timers, aead: o.aead, log: (m) => logs.push(`a: ${m}`) });
  const b = new Device({
    privateKey: keysB.privateKey,
    tun: tunB,
    bind: net.bind('b'),
    timers: o.timers,
    aead: o.aead,
    handshakeLoadThreshold: o.loadThresholdB,
    log: (m) => logs.push(`b: ${m}`),
  });
  a.setPeer({ publicKey: keysB.publicKey, allowedIps: ['10.0.0.2/32', 'fd00::2/128'], endpoint: 'b', presharedKey: o.psk, persistentKeepalive: o.keepaliveA });
  b.setPeer({ publicKey: keysA.publicKey, allowedIps: ['10.0.0.1/32', 'fd00::1/128'], endpoint: o.bKnowsA ? 'a' : undefined, presharedKey: o.pskB ?? o.psk });
  await a.up();
  await b.up();
  return { net, a, b, tunA, tunB, keysA, keysB, logs, close: async () => void (await Promise.all([a.close(), b.close()])) };
}
