/**
 * The policy API used by the coordination server and `pierce policy check`.
 * A policy is accepted only when it parses, validates and every one of its tests passes.
 */
import { type PolicyWorld, toIdentity } from './compile.js';
import { type PolicyTestResult, runTests } from './evaluate.js';
import { type Policy, PolicyError, parsePolicy } from './policy.js';

export { compileFilter, PolicyIndex, type PolicyNode, type PolicyWorld, visiblePeers } from './compile.js';
export { decidingRule, type Identity, type PolicyTestResult } from './evaluate.js';
export { type Policy, PolicyError, parsePolicy } from './policy.js';

export interface PolicyCheck {
  policy?: Policy;
  errors: PolicyError[];
  warnings: string[];
  tests: PolicyTestResult[];
}

/**
 * Runs the policy's tests. Without a world, every name stands for a synthesised device
 * with just that identity; with one, for the real nodes that carry it (see `identitiesOf`).
 */
export function runPolicyTests(policy: Policy, world?: PolicyWorld): PolicyTestResult[] {
  return runTests(policy, world?.nodes.map(toIdentity));
}

/** Parses, validates and tests a policy; `world` makes the tests run against the real nodes too. */
export function checkPolicy(text: string, opts: { filename?: string; world?: PolicyWorld } = {}): PolicyCheck {
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
  if (opts.world) tests.push(...runPolicyTests(policy, opts.world).filter((t) => !t.pass).map((t) => ({ ...t, message: `${t.message} (against the current nodes)` })));
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
