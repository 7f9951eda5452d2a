/**
 * Self-tests of the netlab NAT kinds, measured with a real STUN server (coturn) on two
 * different public addresses: what each router's mapping looks like from outside.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startCoturn, STUN_PORT } from './coturn.js';
import { type Host, withLab } from './netlab.js';
import { requireTools } from './require.js';

const PROBE = new URL('./stun-probe.ts', import.meta.url).pathname;

interface Probe {
  localPort: number;
  mapped: Record<string, string | null>;
}

async function probe(h: Host, servers: string[]): Promise<Probe> {
  const p = h.node(PROBE, servers, { name: 'stun-probe' });
  const code = await p.exited;
  assert.equal(code, 0, `stun-probe failed: ${p.output}`);
  return JSON.parse(p.output.trim().split('\n').pop()!) as Probe;
}

const tcpServer = `require('net').createServer(s=>s.end('hello')).listen(Number(process.argv[1]),()=>console.log('listening'))`;
const tcpClient = `const s=require('net').connect(Number(process.argv[2]),process.argv[1]);let d='';s.on('data',c=>d+=c);s.on('close',()=>{console.log(d);process.exit(d==='hello'?0:1)});s.on('error',e=>{console.log(e.code);process.exit(1)});setTimeout(()=>{console.log('timeout');process.exit(1)},3000)`;

test('netlab NAT kinds measured with coturn on two public addresses', async () => {
  requireTools([{ cmd: 'turnserver', pkg: 'coturn' }]);
  await withLab(
    'nat-kinds',
    (lab) => {
      const inet = lab.internet();
      lab.publicHost({ name: 'stun', secondaryAddr: true });
      lab.publicHost({ name: 'pub' });
      for (const nat of ['eim', 'edm', 'udp-blocked'] as const) lab.host({ name: `${nat}-host`, lan: lab.router({ upstream: inet, nat, name: nat }) });
    },
    async (lab) => {
      const [stun, pub, eimHost, edmHost, blockedHost] = ['stun', 'pub', 'eim-host', 'edm-host', 'udp-blocked-host'].map((n) => lab.hostNamed(n));
      await startCoturn(stun, [stun.addr, stun.addr2!]);
      const servers = [`${stun.addr}:${STUN_PORT}`, `${stun.addr2}:${STUN_PORT}`];
      const table: string[] = [];
      const row = (kind: string, p: Probe) => table.push(`${kind.padEnd(12)} local :${p.localPort}  → ${servers.map((s) => p.mapped[s] ?? 'no answer').join('  |  ')}`);

      const none = await probe(pub, servers);
      row('none', none);
      for (const s of servers) assert.equal(none.mapped[s], `${pub.addr}:${none.localPort}`, 'a public host is seen as itself');

      const eim = await probe(eimHost, servers);
      row('eim', eim);
      assert.ok(eim.mapped[servers[0]] && eim.mapped[servers[1]], 'EIM host got both STUN answers');
      assert.equal(eim.mapped[servers[0]], eim.mapped[servers[1]], 'EIM: one mapping for both destinations');
      assert.equal(eim.mapped[servers[0]]!.split(':')[0], eimHost.publicAddr);

      const edm = await probe(edmHost, servers);
      row('edm', edm);
      assert.ok(edm.mapped[servers[0]] && edm.mapped[servers[1]], 'EDM host got both STUN answers');
      assert.equal(edm.mapped[servers[0]]!.split(':')[0], edmHost.publicAddr);
      assert.notEqual(edm.mapped[servers[0]], edm.mapped[servers[1]], 'EDM: the mapping differs per destination');

      const blocked = await probe(blockedHost, servers);
      row('udp-blocked', blocked);
      for (const s of servers) assert.equal(blocked.mapped[s], null, 'UDP-blocked: no STUN answer');
      const srv = pub.spawn([process.execPath, '-e', tcpServer, '443'], { name: 'tcp443' });
      await srv.waitFor(/listening/);
      const ok443 = await blockedHost.exec([process.execPath, '-e', tcpClient, pub.addr, '443'], { allowFail: true });
      assert.equal(ok443.code, 0, `TCP/443 from the UDP-blocked LAN works: ${ok443.stdout}`);
      const srv2 = pub.spawn([process.execPath, '-e', tcpServer, '8443'], { name: 'tcp8443' });
      await srv2.waitFor(/listening/);
      const other = await blockedHost.exec([process.execPath, '-e', tcpClient, pub.addr, '8443'], { allowFail: true });
      assert.notEqual(other.code, 0, 'other TCP ports are blocked');
      table.push('udp-blocked  TCP/443 → ok, TCP/8443 → blocked');
      process.stdout.write(`# NAT kinds (coturn at ${servers.join(', ')}):\n${table.map((l) => `#   ${l}`).join('\n')}\n`);
    },
  );
});
