/** Creates a TUN, changes its routes live and prints what the kernel shows after each step as JSON. argv: <name>. */
import { execFileSync } from 'node:child_process';
import { createTun } from '../../native/index.js';

const name = process.argv[2];
const kernelRoutes = () =>
  execFileSync('ip', ['-4', 'route', 'show', 'dev', name], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((r) => r && !r.startsWith('10.97.'))
    .sort();
const tun = await createTun({ name, addresses: ['10.97.0.1/32'], routes: ['10.99.0.0/16'] });
const steps: Record<string, unknown> = { initial: kernelRoutes() };
await tun.setRoutes!(['10.99.0.0/16', '10.98.0.5/32', '10.98.0.6/32']);
steps.added = kernelRoutes();
await tun.setRoutes!(['10.98.0.6/32']);
steps.replaced = kernelRoutes();
steps.bad = await tun.setRoutes!(['10.98.0.6/32', 'not-a-cidr']).then(() => 'accepted', (e: Error) => e.message);
steps.afterBad = kernelRoutes();
await tun.close();
process.stdout.write(`${JSON.stringify(steps)}\n`);
