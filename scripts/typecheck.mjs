#!/usr/bin/env node
// One typecheck for the whole tree: the Node side (src-main, native, test, bench) and,
// with DOM types and JSX, the renderer.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const projects = ['tsconfig.json', 'src-renderer/tsconfig.json'].filter((p) => existsSync(p));
for (const p of projects) {
  const res = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', p], { stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
console.log(`typecheck: ${projects.join(', ')} clean`);
