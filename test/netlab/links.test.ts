/**
 * Dual-stack LANs with routed IPv6 behind a stateful firewall, and link impairment with
 * tc netem, measured with ping.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { withLab } from './netlab.js';

const TOOLS = new URL('./udp-tools.ts', import.meta.url).pathname;

const rtt = (out: string) => Number(/= [\d.]+\/([\d.]+)\//.exec(out)?.[1] ?? NaN);

test('dual-stack hosts: IPv6 routed end to end, unsolicited inbound IPv6 dropped by the home firewall', async (t) => {
  await withLab(
    'dual-stack',
    (lab) => {
      lab.publicHost({ name: 'pub' });
      lab.host({ name: 'a', lan: lab.router({ upstream: lab.internet(), nat: 'eim', ipv6: true, name: 'home-a' }) });
      lab.host({ name: 'b', lan: lab.router({ upstream: lab.internet(), nat: 'eim', ipv6: true, name: 'home-b' }) });
    },
    async (lab) => {
      const [pub, a, b] = ['pub', 'a', 'b'].map((n) => lab.hostNamed(n));
      assert.match(a.addr6 ?? '', /^2001:db8:1::/);
      assert.ok(a.addr, 'a dual-stack host has IPv4 too');
      const out6 = await a.exec(['ping', '-6', '-c1', '-W2', pub.addr6!], { allowFail: true });
      assert.equal(out6.code, 0, `a → public host over IPv6: ${out6.stdout}`);
      const out4 = await a.exec(['ping', '-4', '-c1', '-W2', pub.addr], { allowFail: true });
      assert.equal(out4.code, 0, 'a → public host over IPv4 (NAT)');
      const inbound = await pub.exec(['ping', '-6', '-c1', '-W1', a.addr6!], { allowFail: true });
      assert.equal(inbound.code, 0, 'ICMPv6 is let through, as RFC 4890 advises');
      const echo = a.node(TOOLS, ['echo', '40000'], { name: 'echo' });
      await echo.waitFor(/listening/);
      const fromB = await b.exec([process.execPath, '--import', 'tsx', TOOLS, 'ask', a.addr6!, '40000'], { allowFail: true });
      assert.match(fromB.stdout, /timeout/, 'unsolicited UDP to a home IPv6 address is dropped');
      const fromA = await a.exec([process.execPath, '--import', 'tsx', TOOLS, 'ask', '::1', '40000'], { allowFail: true });
      assert.match(fromA.stdout, /^reply ping/, 'the echo server itself answers');
      t.diagnostic(`IPv6: ${a.addr6} → ${pub.addr6} ok; routed LANs 2001:db8:1::/64 and 2001:db8:2::/64`);
    },
  );
});

const hasNetem = () => execFileSync('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null | grep -c "^CONFIG_NET_SCH_NETEM=" || true'], { encoding: 'utf8' }).trim() !== '0';

test('link impairment: loss is measured, delay works where the kernel has netem and fails clearly where not', async (t) => {
  await withLab(
    'impair',
    (lab) => {
      lab.publicHost({ name: 'x' });
      lab.publicHost({ name: 'y' });
    },
    async (lab) => {
      const [x, y] = [lab.hostNamed('x'), lab.hostNamed('y')];
      const before = rtt((await x.exec(['ping', '-c3', '-i0.2', y.addr])).stdout);
      assert.ok(before < 20, `baseline RTT ${before} ms`);
      if (hasNetem()) {
        await x.netem({ delayMs: 40 });
        await y.netem({ delayMs: 40 });
        const after = rtt((await x.exec(['ping', '-c3', '-i0.2', y.addr])).stdout);
        assert.ok(after >= 80 && after < 200, `RTT with 2 × 40 ms netem: ${after} ms`);
        t.diagnostic(`netem: RTT ${before.toFixed(2)} ms → ${after.toFixed(1)} ms with 40 ms each way`);
      } else {
        await assert.rejects(x.netem({ delayMs: 40 }), /no sch_netem \(CONFIG_NET_SCH_NETEM\)/);
        t.diagnostic('this kernel has no sch_netem: delay is unavailable and says so');
      }
      await x.netem({ lossPct: 50 });
      const ping = await x.exec(['ping', '-c40', '-i0.05', '-W1', y.addr], { allowFail: true });
      const loss = Number(/([\d.]+)% packet loss/.exec(ping.stdout)?.[1]);
      assert.ok(loss >= 20 && loss <= 80, `50% configured loss measured as ${loss}%`);
      t.diagnostic(`loss: configured 50%, measured ${loss}% over 40 pings`);
    },
  );
});
