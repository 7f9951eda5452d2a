import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { checkPolicy } from '../../policy/index.js';

/**
 * `pierce policy check <file> [--json]`: exit 0 only when the policy is valid and all its tests pass.
 * Returns the `policy` command so the server-facing sub-commands (`policy get|set`, owned by
 * the coordination server's CLI) can be registered on it next to `check`.
 */
export function register(program: Command): Command {
  const policy = program.command('policy').description('check, get and set HuJSON ACL policies');
  policy
    .command('check <file>')
    .description('validate a policy file and run its tests (exit 0 only when all pass)')
    .option('--json', 'print the result as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
      }
      const res = checkPolicy(text, { filename: file });
      const ok = res.errors.length === 0;
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify(
            {
              ok,
              errors: res.errors.map((e) => ({ file, line: e.position?.line, column: e.position?.column, message: e.reason })),
              warnings: res.warnings,
              tests: res.tests.map(({ test, flow, expected, actual, pass, rule }) => ({ test, flow, expected, actual, pass, rule })),
            },
            null,
            2,
          )}\n`,
        );
      } else {
        for (const w of res.warnings) process.stderr.write(`warning: ${w}\n`);
        for (const e of res.errors) process.stderr.write(`${e.message}\n`);
        if (ok) process.stdout.write(`${file}: ok (${res.policy!.acls.length} rules, ${res.tests.length} test flows passed)\n`);
      }
      if (!ok) process.exitCode = 1;
    });
  return policy;
}
