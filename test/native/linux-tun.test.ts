import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { checkCidr } from '../../native/ip-config.js';
import { createTun, TunError } from '../../native/index.js';
import { checkIfName } from '../../native/linux-tun.js';

const run = promisify(execFile);
const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));

async function requireRootAndTools(): Promise<void> {
  if (process.getuid?.() !== 0) assert.fail('TUN tests need root (network namespaces, /dev/net/tun)');
  for (const [cmd, pkg] of [['ip', 'iproute2'], ['setpriv', 'util-linux']]) {
    await run('sh', ['-c', `command -v ${cmd}`]).catch(() => assert.fail(`\`${cmd}\` is missing: install the Debian package ${pkg}`));
  }
}

async function json(cmd: string[], timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const { stdout } = await run(cmd[0], cmd.slice(1), { timeout: timeoutMs });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}

describe('Linux TUN through koffi', () => {
  const ns = `pt-${randomBytes(3).toString('hex')}`;
  before(async () => {
    await requireRootAndTools();
    await run('ip', ['netns', 'add', ns]);
  });
  after(async () => {
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  });

  for (const writer of ['direct', 'worker'] as const) {
    it(`reads bursts of real packets the kernel routes into it and writes the replies back (writer: ${writer})`, async () => {
      const r = await json(['ip', 'netns', 'exec', ns, process.execPath, '--import', 'tsx', here('./tun-echo-fixture.ts'), `${ns}t0`, '1400', '1000', writer]);
      assert.equal(r.name, `${ns}t0`);
      assert.equal(r.mtu, 1400);
      assert.equal(r.received, 1000, 'every datagram came back through the TUN');
      assert.equal(r.mismatches, 0, 'payloads came back byte for byte');
      assert.ok((r.maxBatch as number) > 1, `reads are batched (largest batch ${r.maxBatch})`);
      const { stdout } = await run('ip', ['netns', 'exec', ns, 'ip', '-o', 'link']);
      assert.ok(!stdout.includes(`${ns}t0`), 'close() removed the interface');
    });
  }

  it('changes its routes live: adds the new ones, deletes the dropped ones, refuses bad CIDRs', async () => {
    const r = await json(['ip', 'netns', 'exec', ns, process.execPath, '--import', 'tsx', here('./tun-routes-fixture.ts'), `${ns}t3`]);
    assert.deepEqual(r.initial, ['10.99.0.0/16']);
    assert.deepEqual(r.added, ['10.98.0.5', '10.98.0.6', '10.99.0.0/16']);
    assert.deepEqual(r.replaced, ['10.98.0.6']);
    assert.match(r.bad as string, /not an IP address or CIDR: "not-a-cidr"/);
    assert.deepEqual(r.afterBad, ['10.98.0.6'], 'a refused list changes nothing');
  });

  it('names the fix when CAP_NET_ADMIN is missing (TUNSETIFF EPERM)', async () => {
    const r = await json(['ip', 'netns', 'exec', ns, 'setpriv', '--bounding-set', '-net_admin', '--inh-caps', '-net_admin', process.execPath, '--import', 'tsx', here('./tun-open-fixture.ts'), `${ns}t1`]);
    assert.equal(r.created, false);
    assert.equal(r.code, 'permission');
    assert.match(r.message as string, /TUNSETIFF.*setcap cap_net_admin\+ep/);
  });

  it('names the fix when /dev/net/tun cannot be opened (EACCES as an unprivileged user)', async () => {
    const r = await json(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', here('./tun-open-fixture.ts'), `${ns}t2`]);
    assert.equal(r.created, false);
    assert.equal(r.code, 'permission');
    assert.match(r.message as string, /open \/dev\/net\/tun.*run as root or grant CAP_NET_ADMIN/);
  });
});

describe('TUN option checks', () => {
  it('rejects bad names, MTUs and CIDRs with typed errors before touching the kernel', async () => {
    assert.throws(() => checkIfName('this-name-is-too-long'), TunError);
    assert.throws(() => checkIfName('a b'), /invalid interface name/);
    assert.equal(checkIfName('pierce%d'), 'pierce%d');
    assert.throws(() => checkCidr('10.0.0.1/33'), /not an IP address or CIDR/);
    assert.throws(() => checkCidr('fd00::1/129'), TunError);
    assert.throws(() => checkCidr('10.0.0.1/24/1'), TunError);
    assert.equal(checkCidr('fd00::1/64'), 'fd00::1/64');
    if (process.platform === 'linux') await assert.rejects(createTun({ mtu: 20 }), /MTU must be an integer/);
  });
});
