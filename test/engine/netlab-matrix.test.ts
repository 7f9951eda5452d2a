/**
 * The netlab matrix (issue: NAT traversal): real daemons with TUN devices behind real
 * kernel NATs; direct everywhere except UDP-blocked (relay over TCP 443), IPv6 preferred
 * on dual-stack, and a 20 MB TCP transfer through each tunnel with a matching SHA-256.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRow, formatRow, type MatrixRow, runScenario, SCENARIOS, TABLE_HEADER } from './matrix.js';

test('netlab matrix: first packet via the relay, then the expected path; 20 MB arrive intact', async (t) => {
  const rows: MatrixRow[] = [];
  for (const s of SCENARIOS.filter((x) => !x.hard)) rows.push(await runScenario(s, { transferBytes: 20_000_000 }));
  t.diagnostic(TABLE_HEADER);
  for (const r of rows) t.diagnostic(formatRow(r));
  const problems = rows.map(checkRow).filter((p): p is string => !!p);
  assert.deepEqual(problems, []);
});
