/**
 * A MagicSock + WireGuard node for netlab tests, run inside a namespace and driven over
 * stdin/stdout JSON lines (the test plays coordination server). A fake TUN counts what
 * arrives, so the tests measure the transport, not the OS.
 *   env PIERCE_DERPMAP: the relay map (JSON); PIERCE_ADDR: this node's tunnel address
 *   → {"ready": {nodeKey, discoKey, endpoints}}
 *   ← {"cmd": "peer", nodeKey, discoKey, endpoints, addr}   ← {"cmd": "send", dst, from, count}
 *   ← {"cmd": "status", peer}  → {"status": {path, received}}     ← {"cmd": "exit"}
 */
import { createInterface } from 'node:readline';
import { MagicSock } from '../../src-main/magicsock/magicsock.js';
import type { DerpMap } from '../../src-main/protocol/derpmap.js';
import { encodeKey, generateKeyPair } from '../../src-main/protocol/keys.js';
import { Device } from '../../src-main/wireguard/device.js';
import { FakeTun, ipv4Packet, seqOf } from '../wireguard/fakes.js';

const derpMap = JSON.parse(process.env.PIERCE_DERPMAP!) as DerpMap;
const addr = process.env.PIERCE_ADDR!;
const node = generateKeyPair();
const disco = generateKeyPair();
const sock = new MagicSock({ nodePrivateKey: node.privateKey, discoPrivateKey: disco.privateKey, derpMap, homeRegion: 1, log: (m) => process.stderr.write(`${m}\n`) });
const tun = new FakeTun('agent');
const dev = new Device({ privateKey: node.privateKey, tun, bind: sock });
await dev.up();
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
process.stderr.write(`candidates: ${sock.localEndpoints().join(' ')}\n`);
out({ ready: { nodeKey: encodeKey('nodekey', node.publicKey), discoKey: Buffer.from(disco.publicKey).toString('hex'), endpoints: sock.localEndpoints() } });

const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
for await (const line of createInterface({ input: process.stdin })) {
  const m = JSON.parse(line) as Record<string, unknown>;
  if (m.cmd === 'peer') {
    const nodeKey = hex((m.nodeKey as string).slice('nodekey:'.length));
    sock.setPeers([{ nodeKey, discoKey: hex(m.discoKey as string), endpoints: m.endpoints as string[], homeRegion: 1 }]);
    dev.setPeer({ publicKey: nodeKey, allowedIps: [`${m.addr as string}/32`], endpoint: m.nodeKey as string, persistentKeepalive: 0 });
    out({ ok: true });
  } else if (m.cmd === 'send') {
    const from = (m.from as number) ?? 0;
    for (let i = 0; i < (m.count as number); i++) tun.inject([ipv4Packet(addr, m.dst as string, from + i)]);
    out({ ok: true });
  } else if (m.cmd === 'status') {
    const seqs = new Set(tun.written.map((p) => seqOf(p)));
    out({ status: { path: sock.pathOf(m.peer as string), received: seqs.size } });
  } else if (m.cmd === 'exit') {
    await dev.close();
    process.exit(0);
  }
}
