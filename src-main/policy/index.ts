/**
 * The policy API used by the coordination server and `pierce policy check`.
 * A policy is accepted only when it parses, validates and every one of its tests passes.
 */
import { runPolicyTests, type PolicyTestResult } from './evaluate.js';
import { type Policy, PolicyError, parsePolicy } from './policy.js';

export { compileFilter, PolicyIndex, type PolicyNode, type PolicyWorld, visiblePeers } from './compile.js';
export { decidingRule, type Identity, type PolicyTestResult, runPolicyTests } from './evaluate.js';
export { type Policy, PolicyError, parsePolicy } from './policy.js';

export interface PolicyCheck {
  policy?: Policy;
  errors: PolicyError[];
  warnings: string[];
  tests: PolicyTestResult[];
}

export function checkPolicy(text: string, opts: { filename?: string } = {}): PolicyCheck {
  let policy: Policy;
  try {
    policy = parsePolicy(text, opts);
  } catch (err) {
    if (err instanceof PolicyError) return { errors: [err], warnings: [], tests: [] };
    throw err;
  }
  const warnings: string[] = [];
  if (policy.acls.length === 0) warnings.push('no acls: default deny, nothing is allowed (add {"action": "accept", "src": ["*"], "dst": ["*:*"]} to allow everything)');
  const tests = runPolicyTests(policy);
  const errors = tests.filter((t) => !t.pass).map((t) => new PolicyError(t.message, { line: t.line, column: t.column }, policy.filename));
  return { policy: errors.length ? undefined : policy, errors, warnings, tests };
}

/** Whether `owner` (a user's device, or a node with tags) may apply `tag`, per tagOwners. */
export function tagAllowed(policy: Policy, tag: string, owner: { user?: string; tags: string[] }): boolean {
  const owners = policy.tagOwners.get(tag);
  if (!owners) return false;
  return owners.some((o) => {
    if (o.startsWith('tag:')) return owner.tags.includes(o);
    if (owner.tags.length) return false;
    if (o === 'autogroup:member' || o === 'autogroup:admin') return owner.user !== undefined;
    if (o.startsWith('group:')) return owner.user !== undefined && (policy.groups.get(o) ?? []).includes(owner.user);
    return o === owner.user;
  });
}
