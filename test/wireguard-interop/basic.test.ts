import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { A_TUNNEL, B_PORT, B_TUNNEL, B_UNDERLAY, ROOT, Lab, interopTools, newKeys, nodeFixture, requireTools, transfer, waitFor, type Side } from './harness.js';

const run = promisify(execFile);

async function ping(lab: Lab, fromNs: string, to: string, count = 5, waitMs = 6000): Promise<{ sent: number; received: number }> {
  return JSON.parse(await lab.exec(fromNs, nodeFixture('udp-ping.ts', ['client', to, '7000', String(count), String(waitMs)])));
}

async function echoServers(lab: Lab): Promise<void> {
  const sa = lab.spawn(lab.nsA, nodeFixture('udp-ping.ts', ['server', A_TUNNEL, '7000']));
  const sb = lab.spawn(lab.nsB, nodeFixture('udp-ping.ts', ['server', B_TUNNEL, '7000']));
  await waitFor('UDP echo servers', () => sa.log().includes('listening') && sb.log().includes('listening'));
}

async function pingBothWays(lab: Lab): Promise<void> {
  const ab = await ping(lab, lab.nsA, B_TUNNEL);
  assert.equal(ab.received, ab.sent, `Pierce -> wireguard-go: ${JSON.stringify(ab)}`);
  const ba = await ping(lab, lab.nsB, A_TUNNEL);
  assert.equal(ba.received, ba.sent, `wireguard-go -> Pierce: ${JSON.stringify(ba)}`);
}

describe('Pierce <-> wireguard-go interop', () => {
  it('Pierce initiates (no PSK): pings both ways and 100 MB over TCP arrive intact', async () => {
    await requireTools(interopTools);
    const lab = await Lab.create();
    try {
      const a: Side = { keys: newKeys(), knowsEndpoint: true };
      const b: Side = { keys: newKeys(), knowsEndpoint: false };
      await lab.wireguardGo(b, a);
      const p = await lab.pierce(a, b);
      await echoServers(lab);
      await pingBothWays(lab);
      const st = await lab.pierceStatus(p.tun);
      assert.ok(st.peers[0].lastHandshakeMs, 'Pierce reports a completed handshake');
      const sock = statSync(`/run/pierce/wg-${p.tun}.sock`);
      assert.equal(sock.mode & 0o777, 0o600, 'status socket is 0600');
      const { stdout: show } = await run(process.execPath, [join(ROOT, 'bin/pierce.js'), 'wg', 'show', '--tun', p.tun]);
      for (const line of [`interface: ${p.tun}`, `peer: ${b.keys.publicKey}`, `endpoint: ${B_UNDERLAY}:${B_PORT}`, `allowed ips: ${B_TUNNEL}/32`, 'latest handshake: ', 'transfer: ']) {
        assert.ok(show.includes(line), `wg show prints "${line}":\n${show}`);
      }
      p.proc.kill('SIGUSR1');
      await waitFor('SIGUSR1 status dump', () => p.log().includes(`peer: ${b.keys.publicKey}`));
      const x = await transfer(lab, lab.nsA, lab.nsB, B_TUNNEL, 100 * 1024 * 1024);
      assert.equal(x.bytes, 100 * 1024 * 1024);
      const after = await lab.pierceStatus(p.tun);
      assert.ok(after.peers[0].txBytes > 100 * 1024 * 1024, `Pierce counted the transfer (tx ${after.peers[0].txBytes})`);
      assert.equal(await p.stop(), 0, 'pierce wg up exits 0 on SIGTERM');
      const links = await lab.exec(lab.nsA, ['ip', '-o', 'link']);
      assert.ok(!links.includes(p.tun), 'the TUN is gone after shutdown');
    } catch (err) {
      process.stderr.write(lab.logs());
      throw err;
    } finally {
      await lab.close();
    }
  });

  it('wireguard-go initiates (with a preshared key): pings both ways, 20 MB back to wireguard-go', async () => {
    await requireTools(interopTools);
    const lab = await Lab.create();
    try {
      const psk = randomBytes(32).toString('base64');
      const a: Side = { keys: newKeys(), psk, knowsEndpoint: false };
      const b: Side = { keys: newKeys(), psk, knowsEndpoint: true };
      await lab.pierce(a, b);
      await lab.wireguardGo(b, a);
      await echoServers(lab);
      // Pierce has no endpoint for its peer, so only wireguard-go can start this handshake.
      const ba = await ping(lab, lab.nsB, A_TUNNEL);
      assert.equal(ba.received, ba.sent, `wireguard-go -> Pierce: ${JSON.stringify(ba)}`);
      await pingBothWays(lab);
      await transfer(lab, lab.nsA, lab.nsB, B_TUNNEL, 20 * 1024 * 1024);
    } catch (err) {
      process.stderr.write(lab.logs());
      throw err;
    } finally {
      await lab.close();
    }
  });

  it('a PSK mismatch never completes a handshake', async () => {
    await requireTools(interopTools);
    const lab = await Lab.create();
    try {
      const a: Side = { keys: newKeys(), psk: randomBytes(32).toString('base64'), knowsEndpoint: true };
      const b: Side = { keys: newKeys(), psk: randomBytes(32).toString('base64'), knowsEndpoint: false };
      await lab.wireguardGo(b, a);
      const p = await lab.pierce(a, b);
      const sb = lab.spawn(lab.nsB, nodeFixture('udp-ping.ts', ['server', B_TUNNEL, '7000']));
      await waitFor('UDP echo server', () => sb.log().includes('listening'));
      const r = await ping(lab, lab.nsA, B_TUNNEL, 1, 3000);
      assert.equal(r.received, 0);
      assert.equal((await lab.pierceStatus(p.tun)).peers[0].lastHandshakeMs, undefined);
    } finally {
      await lab.close();
    }
  });
});
