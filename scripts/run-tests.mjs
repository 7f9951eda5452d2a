#!/usr/bin/env node
// Runs every test file under test/ (or the files/folders given) with node's built-in
// test runner, loading TypeScript through tsx. One runner for unit, integration and
// network-namespace tests; the summary lines at the end are node:test's own.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(path, out) {
  const st = statSync(path);
  if (st.isFile()) {
    if (path.endsWith('.test.ts')) out.push(path);
    return out;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules') continue;
    collect(join(path, name), out);
  }
  return out;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap((r) => collect(r, []));
if (files.length === 0) {
  console.error('run-tests: no *.test.ts files found');
  process.exit(1);
}
const concurrency = process.env.PIERCE_TEST_CONCURRENCY ?? '2';
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files],
  { stdio: 'inherit' },
);
// The suite must leave no netlab namespaces behind.
const leftover = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout?.split('\n').filter((l) => l.startsWith('pl-')) ?? [];
if (leftover.length) {
  console.error(`run-tests: netlab namespaces left behind: ${leftover.join(', ')}`);
  process.exit(1);
}
process.exit(res.status ?? 1);
