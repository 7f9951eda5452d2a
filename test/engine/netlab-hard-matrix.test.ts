/**
 * The hard cases of NAT traversal in the netlab matrix: birthday probing through an
 * endpoint-dependent NAT, port mappings (UPnP / NAT-PMP / PCP via miniupnpd), two homes
 * behind one carrier NAT (which does not hairpin), and an IPv6-only LAN through NAT64.
 * Real daemons with TUN devices; a 20 MB transfer through each tunnel.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkRow, formatRow, type MatrixRow, runScenario, SCENARIOS, TABLE_HEADER } from './matrix.js';

test('netlab hard-cases matrix: EDM via birthday probing, port mappings, CGNAT, NAT64', async (t) => {
  const rows: MatrixRow[] = [];
  for (const s of SCENARIOS.filter((x) => x.hard)) rows.push(await runScenario(s, { transferBytes: 20_000_000 }));
  t.diagnostic(TABLE_HEADER);
  for (const r of rows) t.diagnostic(formatRow(r));
  assert.deepEqual(rows.map(checkRow).filter((p): p is string => !!p), []);
});
