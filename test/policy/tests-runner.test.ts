import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkPolicy, parsePolicy, runPolicyTests } from '../../src-main/policy/index.js';

const POLICY = `{
  "groups": {"group:eng": ["alice@x", "bob@x"]},
  "tagOwners": {"tag:web": [], "tag:db": [], "tag:ops": []},
  "acls": [
    {"action": "accept", "src": ["alice@x"], "dst": ["tag:db:5432"]},
    {"action": "accept", "src": ["tag:ops"], "dst": ["tag:db:22"]},
  ],
  "tests": [
    {"src": "group:eng", "deny": ["tag:db:5432"]},
    {"src": "tag:web", "deny": ["tag:db:22"]},
    {"src": "100.64.0.7", "accept": ["tag:db:22"]},
  ],
}`;

test('a deny test fails when any member of a group is allowed, naming the rule', () => {
  const [eng] = runPolicyTests(parsePolicy(POLICY));
  assert.equal(eng.pass, false);
  assert.equal(eng.actual, 'accept');
  assert.deepEqual(eng.rule, { index: 0, line: 5 });
  assert.match(eng.message, /FAIL tests\[0\] \(src group:eng\): tag:db:5432\/tcp expected deny, got accept: allowed for only some of the devices they stand for, by acls\[0\] \(line 5\)/);
});

test('without a world, names stand for synthesised devices: an IP matches no tag rule', () => {
  const [, web, ip] = runPolicyTests(parsePolicy(POLICY));
  assert.equal(web.pass, true);
  assert.equal(ip.pass, false);
  assert.match(ip.message, /no rule allows it \(default deny\)/);
});

test('against a world, tests use the real nodes: an IP is the node holding it, a tag every node carrying it', () => {
  const world = {
    nodes: [
      { id: 'db', tags: ['tag:db'], addresses: ['100.64.0.1'] },
      { id: 'ops', tags: ['tag:ops'], addresses: ['100.64.0.7'] },
      { id: 'web-and-ops', tags: ['tag:web', 'tag:ops'], addresses: ['100.64.0.8'] },
      { id: 'web', tags: ['tag:web'], addresses: ['100.64.0.9'] },
    ],
  };
  const [, web, ip] = runPolicyTests(parsePolicy(POLICY), world);
  assert.equal(ip.pass, true, ip.message);
  assert.deepEqual(ip.rule, { index: 1, line: 6 });
  assert.equal(web.pass, false, 'one tag:web node also carries tag:ops, so tag:web -> tag:db:22 is not denied for all');
  assert.match(web.message, /acls\[1\]/);
});

test('checkPolicy with a world reports the failures that only the real nodes expose', () => {
  const text = `{"tagOwners": {"tag:web": [], "tag:ops": [], "tag:db": []},
    "acls": [{"action": "accept", "src": ["tag:ops"], "dst": ["tag:db:22"]}],
    "tests": [{"src": "tag:web", "deny": ["tag:db:22"]}]}`;
  assert.deepEqual(checkPolicy(text).errors, []);
  const world = { nodes: [{ id: 'w', tags: ['tag:web', 'tag:ops'], addresses: ['100.64.0.8'] }] };
  const res = checkPolicy(text, { world });
  assert.equal(res.policy, undefined);
  assert.match(res.errors[0].message, /FAIL tests\[0\] \(src tag:web\).*\(against the current nodes\)/);
});

test('a user without nodes is a synthesised untagged device of that user', () => {
  const policy = parsePolicy(`{"tagOwners": {"tag:s": []}, "acls": [{"action": "accept", "src": ["carol@x"], "dst": ["tag:s:443"]}],
    "tests": [{"src": "carol@x", "accept": ["tag:s:443"], "deny": ["tag:s:80"]}]}`);
  const results = runPolicyTests(policy, { nodes: [{ id: 's', tags: ['tag:s'], addresses: ['100.64.0.2'] }] });
  assert.deepEqual(results.map((r) => r.pass), [true, true]);
});

test('tests honour proto: a udp test is not satisfied by a tcp-only rule', () => {
  const policy = parsePolicy(`{"tagOwners": {"tag:s": []}, "acls": [{"action": "accept", "src": ["*"], "dst": ["tag:s:53"], "proto": "tcp"}],
    "tests": [{"src": "a@x", "proto": "udp", "deny": ["tag:s:53"]}, {"src": "a@x", "proto": 6, "accept": ["tag:s:53"]}]}`);
  assert.deepEqual(runPolicyTests(policy).map((r) => [r.pass, r.flow]), [[true, 'a@x -> tag:s:53/udp'], [true, 'a@x -> tag:s:53/tcp']]);
});
