/** Netlab leaves nothing behind: not when a test throws, and not (after a sweep) when its process is killed. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { labNamespaces, Netlab, withLab } from './netlab.js';

test('a throwing test still tears its lab down, processes included', async () => {
  let id = '';
  let pid = 0;
  await assert.rejects(
    withLab(
      'throws',
      (lab) => void lab.publicHost({ name: 'x' }),
      async (lab) => {
        id = lab.id;
        const p = lab.hostNamed('x').spawn(['sleep', '60'], { name: 'sleeper' });
        pid = p.child.pid!;
        assert.ok(labNamespaces().some((n) => n.startsWith(id)));
        throw new Error('boom');
      },
    ),
    /boom/,
  );
  assert.deepEqual(
    labNamespaces().filter((n) => n.startsWith(id)),
    [],
  );
  assert.throws(() => process.kill(pid, 0), 'the lab process is gone');
});

test('the sweeper removes the lab of a process killed with SIGKILL', async () => {
  const script = `import { Netlab } from ${JSON.stringify(new URL('./netlab.ts', import.meta.url).pathname)};
const lab = await Netlab.create({ name: 'doomed' }); lab.publicHost({ name: 'x' }); await lab.up();
console.log('UP ' + lab.id); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const id = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      const m = /UP (\S+)/.exec(d.toString());
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  child.kill('SIGKILL');
  await new Promise((r) => child.on('exit', r));
  assert.ok(labNamespaces().some((n) => n.startsWith(id)), 'SIGKILL leaves the namespaces behind');
  // Another test's Netlab.create may sweep it first; either way it must be gone now.
  Netlab.sweep();
  assert.deepEqual(
    labNamespaces().filter((n) => n.startsWith(id)),
    [],
  );
});
