import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HujsonError, parseHujson } from '../../src-main/policy/hujson.js';
import { checkPolicy, PolicyError } from '../../src-main/policy/index.js';

test('comments, trailing commas and escapes parse like the equivalent JSON', () => {
  const text = `// leading comment
{
  /* block
     comment */ "a": [1, -2.5e3, true, false, null,],  // trailing comma in a list
  "b": {"c": "x\\"y\\u00e9\\n/*not a comment*/",},
}`;
  const { value, positions } = parseHujson(text);
  assert.deepEqual(JSON.parse(JSON.stringify(value)), { a: [1, -2500, true, false, null], b: { c: 'x"y\u00e9\n/*not a comment*/' } });
  assert.deepEqual(positions.get('a.1'), { line: 4, column: 26 });
  assert.deepEqual(positions.get('b.c@key'), { line: 5, column: 9 });
});

test('syntax errors name the line and column of the problem', () => {
  const cases: [string, string][] = [
    ['{"a": 1 "b": 2}', '1:9: expected "," or "}" after the value of "a", found "\\""'],
    ['{\n  "a": [1,\n  2', '3:4: expected "," or "]" in list, found end of input'],
    ['{"a": /* never closed', '1:7: unterminated /* comment'],
    ['{"a": "tab\there"}', '1:7: control character "\\t" inside a string (escape it)'],
    ['{"a": 1, "a": 2}', '1:10: duplicate key "a"'],
    ['{a: 1}', '1:2: expected a "quoted" key or "}", found "a"'],
    ['[01]', '1:3: expected "," or "]" in list, found "1"'],
    ['{} {}', '1:4: unexpected "{" after the end of the document'],
    ['"\\x"', '1:4: invalid escape \\x in string'],
  ];
  for (const [text, want] of cases) {
    assert.throws(() => parseHujson(text), (e: unknown) => e instanceof HujsonError && e.message === want, `${JSON.stringify(text)} -> ${want}`);
  }
  assert.throws(() => parseHujson('['.repeat(100) + ']'.repeat(100)), /nesting too deep/);
});

test('fuzz: random token soup yields a value or a positioned error, never a crash', () => {
  let seed = 31337;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const tokens = ['{', '}', '[', ']', ',', ':', '"k"', '"tag:x:22"', '1', '-0.5', 'true', 'null', '//c\n', '/*c*/', '\n', ' ', '"acls"', '"src"', '"dst"', '"*:*"', '"action"', '"accept"', '"\\u12"', '/', '"'];
  for (let i = 0; i < 5000; i++) {
    const text = Array.from({ length: 1 + rnd(30) }, () => tokens[rnd(tokens.length)]).join('');
    try {
      parseHujson(text);
    } catch (e) {
      assert.ok(e instanceof HujsonError, `${JSON.stringify(text)}: ${String(e)}`);
      assert.ok(e.position.line >= 1 && e.position.column >= 1);
    }
    const res = checkPolicy(text);
    for (const err of res.errors) assert.ok(err instanceof PolicyError);
  }
});

test('fuzz: policy-shaped documents with random values are accepted or rejected with a position', () => {
  let seed = 2024;
  const rnd = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const pick = <T>(xs: T[]) => xs[rnd(xs.length)];
  const values = ['"*"', '"*:*"', '"tag:a:22"', '"tag:zz:1"', '"group:g"', '"a@x"', '"autogroup:self:*"', '"autogroup:bogus:*"', '"[fd7a::1]:80"',
    '"fd7a::1:80"', '"10.0.0.0/8:1-2"', '"10.0.0.0/33:1"', '"h:70000"', '"h:5-4"', '"h:,"', '"::"', '"[::1]"', '1', '[]', '{}', 'null', '"tcp"', '"300"', '"icmp"'];
  const list = () => `[${Array.from({ length: rnd(3) }, () => pick(values)).join(',')}]`;
  for (let i = 0; i < 3000; i++) {
    const acl = `{"action": ${pick(['"accept"', '"deny"'])}, "src": ${list()}, "dst": ${list()}${rnd(3) ? '' : `, "proto": ${pick(values)}`}}`;
    const t = `{"src": ${pick(values)}, "accept": ${list()}, "deny": ${list()}}`;
    const text = `{"groups": {"group:g": ${pick(['["a@x"]', list()])}}, "hosts": {"h": ${pick(['"10.1.1.1"', ...values])}},
      "tagOwners": {"tag:a": ${list()}}, "acls": [${acl}], "tests": [${t}]${rnd(10) ? '' : ', "ssh": []'}}`;
    const res = checkPolicy(text);
    for (const err of res.errors) {
      assert.ok(err instanceof PolicyError);
      assert.ok(err.position && err.position.line >= 1, err.message);
    }
    assert.equal(res.policy === undefined, res.errors.length > 0);
  }
});
