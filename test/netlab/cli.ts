/**
 * `npm run lab -- <scenario>`: bring a named topology up, print `export …` lines describing
 * it (also written to /run/pierce-netlab/<id>.env), and keep it up until Ctrl-C or
 * `npm run lab -- down`. Also: `list`, `down [id]`, `sweep` (leftovers of crashed runs).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labNamespaces, Netlab, REGISTRY } from './netlab.js';
import { scenarios } from './scenarios.js';

const [cmd, arg] = process.argv.slice(2);

function entries(): { id: string; name: string; pid: number }[] {
  try {
    return readdirSync(REGISTRY)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(REGISTRY, f), 'utf8')) as { id: string; name: string; pid: number });
  } catch {
    return [];
  }
}

if (!cmd || cmd === 'help' || cmd === '--help') {
  console.log('usage: npm run lab -- <scenario> | list | down [id] | sweep');
  for (const [name, s] of Object.entries(scenarios)) console.log(`  ${name.padEnd(12)} ${s.about}`);
} else if (cmd === 'list') {
  for (const e of entries()) console.log(`${e.id}  ${e.name}  owner pid ${e.pid}`);
  console.log(`namespaces: ${labNamespaces().join(' ') || '(none)'}`);
} else if (cmd === 'down') {
  const targets = entries().filter((e) => !arg || e.id === arg);
  for (const e of targets) {
    try {
      process.kill(e.pid, 'SIGTERM');
      console.log(`stopping ${e.id} (${e.name})`);
    } catch {
      console.log(`${e.id}: owner gone, sweeping`);
    }
  }
  await new Promise((r) => setTimeout(r, 1500));
  const swept = Netlab.sweep();
  if (swept.length) console.log(`swept ${swept.join(' ')}`);
} else if (cmd === 'sweep') {
  const swept = Netlab.sweep();
  console.log(swept.length ? `swept ${swept.join(' ')}` : 'nothing to sweep');
} else {
  const scenario = scenarios[cmd];
  if (!scenario) {
    console.error(`unknown scenario "${cmd}"; try: ${Object.keys(scenarios).join(', ')}`);
    process.exit(2);
  }
  const lab = await Netlab.create({ name: cmd });
  scenario.build(lab);
  await lab.up();
  const text = lab.describe();
  writeFileSync(join(REGISTRY, `${lab.id}.env`), `${text}\n`);
  console.log(text);
  console.log(`# up; run commands with: ip netns exec <NS> <command>   (source ${join(REGISTRY, `${lab.id}.env`)})`);
  console.log('# Ctrl-C or `npm run lab -- down` tears it down');
  setInterval(() => {}, 1 << 30);
}
