import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { A_PORT, A_TUNNEL, A_UNDERLAY, B_PORT, B_TUNNEL, B_UNDERLAY, Lab, interopTools, newKeys, nodeFixture, requireTools, transfer, waitFor, type Side } from './harness.js';
import { udpRecords } from './pcap.js';

const MESSAGE_TRANSPORT = 4;
/** A transport message carrying no packet: 16-byte header + 16-byte tag (whitepaper §5.4.6). */
const KEEPALIVE_SIZE = 32;

async function ping(lab: Lab, fromNs: string, to: string, waitMs = 6000): Promise<{ sent: number; received: number }> {
  return JSON.parse(await lab.exec(fromNs, nodeFixture('udp-ping.ts', ['client', to, '7000', '1', String(waitMs)])));
}

describe('Pierce <-> wireguard-go: rekeys, replays, handshake floods', () => {
  it('a transfer spanning at least two rekeys arrives intact (test-only short REKEY_AFTER_TIME)', async () => {
    await requireTools(interopTools);
    const lab = await Lab.create();
    try {
      const a: Side = { keys: newKeys(), knowsEndpoint: true };
      const b: Side = { keys: newKeys(), knowsEndpoint: false };
      await lab.wireguardGo(b, a);
      const p = await lab.pierce(a, b, { env: { PIERCE_WG_TEST_TIMERS: 'rekeyAfterTimeMs=1000,rekeyTimeoutMs=500' } });
      const handshakes = new Set<number>();
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const hs = (await lab.pierceStatus(p.tun)).peers[0].lastHandshakeMs;
          if (hs) handshakes.add(hs);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const x = await transfer(lab, lab.nsA, lab.nsB, B_TUNNEL, 1 << 30, 7);
      polling = false;
      await poller;
      assert.ok(x.bytes > 10 * 1024 * 1024, `moved ${x.bytes} bytes`);
      assert.ok(handshakes.size >= 3, `initial handshake + >= 2 rekeys during the transfer, saw ${handshakes.size}`);
    } catch (err) {
      process.stderr.write(lab.logs());
      throw err;
    } finally {
      await lab.close();
    }
  });

  it('a replayed captured data packet is dropped: not delivered again, not counted, no roaming', async () => {
    await requireTools([...interopTools, ['tcpdump', 'tcpdump']]);
    const lab = await Lab.create();
    const pcap = join(tmpdir(), `pw-${lab.id}.pcap`);
    try {
      const a: Side = { keys: newKeys(), knowsEndpoint: true };
      const b: Side = { keys: newKeys(), knowsEndpoint: false };
      await lab.wireguardGo(b, a);
      const p = await lab.pierce(a, b);
      const server = lab.spawn(lab.nsA, nodeFixture('udp-ping.ts', ['server', A_TUNNEL, '7000']));
      await waitFor('UDP echo server', () => server.log().includes('listening'));
      const delivered = () => server.log().split('\n').filter((l) => l.startsWith('rx ')).length;
      assert.equal((await ping(lab, lab.nsA, B_TUNNEL, 3000)).received, 0, 'B runs no echo server; this only makes the handshake');
      const dump = lab.spawn(lab.nsA, ['tcpdump', '-n', '-U', '--immediate-mode', '-i', lab.vethA, '-w', pcap, `udp and src host ${B_UNDERLAY} and src port ${B_PORT}`]);
      await waitFor('tcpdump', () => dump.log().includes('listening on'));
      assert.equal((await ping(lab, lab.nsB, A_TUNNEL)).received, 1, 'wireguard-go -> Pierce ping');
      assert.equal(delivered(), 1);
      await dump.stop();
      const all = udpRecords(readFileSync(pcap));
      const data = all.filter((r) => r.payload[0] === MESSAGE_TRANSPORT && r.payload.length > KEEPALIVE_SIZE && r.dstPort === A_PORT);
      assert.ok(data.length >= 1, `captured the encrypted ping (${dump.log()} ${JSON.stringify(all.map((r) => [r.src, r.srcPort, r.dst, r.dstPort, r.payload.length]))})`);
      const before = (await lab.pierceStatus(p.tun)).peers[0];
      const replay = JSON.parse(await lab.exec(lab.nsB, nodeFixture('udp-replay.ts', [A_UNDERLAY, String(A_PORT), data.map((r) => r.payload.toString('hex')).join(','), '5']))) as { sent: number };
      assert.equal(replay.sent, data.length * 5);
      await new Promise((r) => setTimeout(r, 500));
      const afterReplay = (await lab.pierceStatus(p.tun)).peers[0];
      assert.equal(delivered(), 1, 'the replayed ping never reached the echo server again');
      assert.equal(afterReplay.rxBytes, before.rxBytes, 'replays are not counted as received traffic');
      assert.equal(afterReplay.endpoint, `${B_UNDERLAY}:${B_PORT}`, 'a replay from another port does not move the endpoint');
      assert.equal((await ping(lab, lab.nsB, A_TUNNEL)).received, 1, 'the session still works after the replays');
      assert.equal(delivered(), 2);
    } catch (err) {
      process.stderr.write(lab.logs());
      throw err;
    } finally {
      await lab.close();
      rmSync(pcap, { force: true });
    }
  });

  it('under a handshake flood Pierce answers with cookie replies and a legitimate handshake still completes', async () => {
    await requireTools(interopTools);
    const lab = await Lab.create();
    try {
      // Pierce knows no endpoint: wireguard-go must get its initiation through Pierce's cookie check.
      const a: Side = { keys: newKeys(), knowsEndpoint: false };
      const b: Side = { keys: newKeys(), knowsEndpoint: true };
      const p = await lab.pierce(a, b);
      await lab.wireguardGo(b, a);
      const server = lab.spawn(lab.nsA, nodeFixture('udp-ping.ts', ['server', A_TUNNEL, '7000']));
      await waitFor('UDP echo server', () => server.log().includes('listening'));
      const flood = lab.spawn(lab.nsB, nodeFixture('wg-flood.ts', [A_UNDERLAY, String(A_PORT), a.keys.publicKey, '16000', '1000']));
      await new Promise((r) => setTimeout(r, 1000));
      const r = await ping(lab, lab.nsB, A_TUNNEL, 13_000);
      assert.equal(r.received, 1, 'wireguard-go completed its handshake despite the flood');
      assert.ok((await lab.pierceStatus(p.tun)).peers[0].lastHandshakeMs, 'Pierce reports the handshake');
      flood.proc.kill('SIGTERM');
      await waitFor('flood report', () => flood.log().includes('cookieReplies'), 30_000);
      const f = JSON.parse(flood.log().trim().split('\n').at(-1) ?? '{}') as { sent: number; cookieReplies: number };
      assert.ok(f.cookieReplies > 0, `the flooder got cookie replies (${JSON.stringify(f)})`);
    } catch (err) {
      process.stderr.write(lab.logs());
      throw err;
    } finally {
      await lab.close();
    }
  });
});
