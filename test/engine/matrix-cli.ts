/** `npm run lab:matrix [-- scenario…]`: runs the netlab matrix and prints its table. */
import { checkRow, formatRow, type MatrixRow, runScenario, SCENARIOS, TABLE_HEADER } from './matrix.js';

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w));
if (unknown.length) {
  process.stderr.write(`unknown scenario(s): ${unknown.join(', ')}\navailable: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
const rows: MatrixRow[] = [];
let failed = 0;
for (const s of SCENARIOS.filter((x) => !wanted.length || wanted.includes(x.name))) {
  try {
    const row = await runScenario(s, { transferBytes: 20_000_000, log: (m) => process.stderr.write(`${m}\n`) });
    rows.push(row);
    const bad = checkRow(row);
    if (bad) {
      failed++;
      process.stderr.write(`FAIL ${bad}\n`);
    }
  } catch (err) {
    failed++;
    process.stderr.write(`FAIL ${s.name}: ${(err as Error).message}\n`);
  }
}
process.stdout.write(`${TABLE_HEADER}\n${rows.map(formatRow).join('\n')}\n`);
process.exit(failed ? 1 : 0);
