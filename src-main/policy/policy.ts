/**
 * The policy model and its parser: HuJSON text → a validated `Policy` whose every
 * part remembers where it came from. Sections and syntax follow Tailscale's ACL
 * language (groups, tagOwners, hosts, acls, tests, autogroups), with one deliberate
 * difference: no rules means nothing is allowed (default deny).
 */
import { type Cidr, parseCidr } from '../protocol/ip.js';
import type { PortRange } from '../protocol/filter.js';
import { HujsonError, type JsonValue, parseHujson, type Position } from './hujson.js';

export class PolicyError extends Error {
  constructor(
    readonly reason: string,
    readonly position?: Position,
    readonly filename = 'policy',
  ) {
    super(position ? `${filename}:${position.line}:${position.column}: ${reason}` : `${filename}: ${reason}`);
  }
}

export type Target =
  | { kind: 'any' }
  | { kind: 'user'; user: string }
  | { kind: 'group'; group: string; users: string[] }
  | { kind: 'tag'; tag: string }
  | { kind: 'autogroup'; name: 'member' | 'tagged' | 'self' }
  | { kind: 'cidr'; cidr: Cidr; host?: string };

export interface AclDst {
  text: string;
  target: Target;
  ports: PortRange[];
}

export interface Acl {
  index: number;
  position: Position;
  src: Target[];
  dst: AclDst[];
  /** IP protocol numbers; empty means TCP, UDP and ICMP (the default). */
  protos: number[];
}

export interface TestFlow {
  text: string;
  position: Position;
  target: Target;
  port: number;
}

export interface PolicyTest {
  index: number;
  position: Position;
  src: string;
  srcTarget: Target;
  proto: number;
  accept: TestFlow[];
  deny: TestFlow[];
}

export interface Policy {
  filename: string;
  groups: Map<string, string[]>;
  tagOwners: Map<string, string[]>;
  hosts: Map<string, Cidr>;
  acls: Acl[];
  tests: PolicyTest[];
}

export const ALL_PORTS: PortRange = { first: 0, last: 65535 };
/** The protocols an ACL without `proto` covers. */
export const DEFAULT_PROTOS = [1, 6, 17, 58];
/** IANA protocol numbers for the names a policy may use. */
const PROTO_NAMES: Record<string, number> = { icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51, 'ipv6-icmp': 58, sctp: 132 };
const SECTIONS = new Set(['groups', 'tagOwners', 'hosts', 'acls', 'tests']);

const isUser = (s: string) => /^[^@\s:]+@[^@\s:]+$/.test(s);

export function parsePolicy(text: string, opts: { filename?: string } = {}): Policy {
  const filename = opts.filename ?? 'policy';
  let parsed;
  try {
    parsed = parseHujson(text);
  } catch (err) {
    if (err instanceof HujsonError) throw new PolicyError(err.reason, err.position, filename);
    throw err;
  }
  const { value, positions } = parsed;
  const at = (path: string) => positions.get(path);
  const fail = (reason: string, path: string): never => {
    throw new PolicyError(reason, at(path), filename);
  };
  const obj = (v: JsonValue | undefined, path: string, what: string): Record<string, JsonValue> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${what} must be an object`, path);
    return v as Record<string, JsonValue>;
  };
  const strings = (v: JsonValue | undefined, path: string, what: string): string[] => {
    if (!Array.isArray(v)) return fail(`${what} must be a list of strings`, path);
    return v.map((s, i) => (typeof s === 'string' ? s : fail(`${what} must contain only strings`, `${path}.${i}`)));
  };

  const root = obj(value, '', 'the policy');
  for (const k of Object.keys(root)) if (!SECTIONS.has(k)) fail(`unknown section "${k}" (expected one of ${[...SECTIONS].join(', ')})`, `${k}@key`);

  const groups = new Map<string, string[]>();
  const groupsObj = root.groups === undefined ? {} : obj(root.groups, 'groups', '"groups"');
  for (const [name, members] of Object.entries(groupsObj)) {
    const path = `groups.${name}`;
    if (!/^group:[A-Za-z0-9_.-]+$/.test(name)) fail(`group name "${name}" must look like "group:name"`, path);
    const users = strings(members, path, `${name}`);
    users.forEach((u, i) => isUser(u) || fail(`group members must be users like "alice@example.com", not "${u}"`, `${path}.${i}`));
    groups.set(name, users);
  }

  const hosts = new Map<string, Cidr>();
  const hostsObj = root.hosts === undefined ? {} : obj(root.hosts, 'hosts', '"hosts"');
  for (const [name, addr] of Object.entries(hostsObj)) {
    const path = `hosts.${name}`;
    if (!/^[a-z0-9][a-z0-9.-]*$/i.test(name) || name.includes(':') || isUser(name)) fail(`host name "${name}" is not a plain name`, path);
    if (typeof addr !== 'string') fail(`host "${name}" must be an IP address or CIDR string`, path);
    try {
      hosts.set(name, parseCidr(addr as string));
    } catch {
      fail(`host "${name}": "${String(addr)}" is not an IP address or CIDR`, path);
    }
  }

  const tagOwners = new Map<string, string[]>();
  const ownersObj = root.tagOwners === undefined ? {} : obj(root.tagOwners, 'tagOwners', '"tagOwners"');
  for (const name of Object.keys(ownersObj)) if (!/^tag:[A-Za-z0-9_-]+$/.test(name)) fail(`tag name "${name}" must look like "tag:name"`, `tagOwners.${name}`);
  for (const [name, owners] of Object.entries(ownersObj)) {
    const path = `tagOwners.${name}`;
    const list = strings(owners, path, name);
    list.forEach((o, i) => {
      const ok = isUser(o) || groups.has(o) || Object.prototype.hasOwnProperty.call(ownersObj, o) || o === 'autogroup:member' || o === 'autogroup:admin';
      if (!ok) fail(`tag owner "${o}" is not a user, a defined group, a defined tag or autogroup:member/admin`, `${path}.${i}`);
    });
    tagOwners.set(name, list);
  }

  const target = (text: string, path: string, role: 'src' | 'dst' | 'test-src' | 'test-dst'): Target => {
    if (text === '*') {
      if (role === 'test-dst' || role === 'test-src') fail('tests need a concrete source and destination, not "*"', path);
      return { kind: 'any' };
    }
    if (text.startsWith('group:')) {
      const users = groups.get(text);
      if (!users) return fail(`group "${text}" is not defined in "groups"`, path);
      if (role === 'test-dst') fail('a test destination must be a user, tag, host or IP, not a group', path);
      return { kind: 'group', group: text, users };
    }
    if (text.startsWith('tag:')) {
      if (!tagOwners.has(text)) fail(`tag "${text}" is not defined in "tagOwners"`, path);
      return { kind: 'tag', tag: text };
    }
    if (text.startsWith('autogroup:')) {
      const name = text.slice('autogroup:'.length);
      if (name === 'self' && role !== 'dst') fail('autogroup:self is only valid as an ACL destination', path);
      if (name !== 'member' && name !== 'tagged' && name !== 'self') return fail(`unknown autogroup "${text}" (expected autogroup:member, autogroup:tagged or autogroup:self)`, path);
      if (role === 'test-src' || role === 'test-dst') fail(`tests need a concrete identity, not ${text}`, path);
      return { kind: 'autogroup', name };
    }
    if (isUser(text)) return { kind: 'user', user: text };
    const host = hosts.get(text);
    if (host) return { kind: 'cidr', cidr: host, host: text };
    try {
      return { kind: 'cidr', cidr: parseCidr(text) };
    } catch {
      return fail(`"${text}" is not "*", a user, group:, tag:, autogroup:, a host from "hosts", or an IP/CIDR`, path);
    }
  };

  const ports = (text: string, path: string): PortRange[] => {
    if (text === '*') return [ALL_PORTS];
    return text.split(',').map((p) => {
      const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(p.trim());
      if (!m) return fail(`invalid port "${p}" (expected "*", a number, a list "22,80" or a range "8000-8999")`, path);
      const first = Number(m[1]);
      const last = m[2] === undefined ? first : Number(m[2]);
      if (first > 65535 || last > 65535) fail(`port ${Math.max(first, last)} is out of range (0-65535)`, path);
      if (first > last) fail(`port range "${p}" is backwards`, path);
      return { first, last };
    });
  };

  /** "target:ports" where the target may itself contain colons (tag:x, IPv6). */
  const splitHostPort = (text: string, path: string): [string, string] => {
    const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
    if (bracket) return bracket[2] === undefined ? fail(`"${text}" needs ":ports"`, path) : [bracket[1], bracket[2]];
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return fail(`destination "${text}" must be "target:ports", e.g. "tag:server:22" or "*:*"`, path);
    return [text.slice(0, colon), text.slice(colon + 1)];
  };

  const proto = (v: JsonValue | undefined, path: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 255) return v;
    if (typeof v === 'string') {
      if (/^[0-9]{1,3}$/.test(v) && Number(v) <= 255) return Number(v);
      const n = PROTO_NAMES[v.toLowerCase()];
      if (n !== undefined) return n;
    }
    return fail(`unknown protocol ${JSON.stringify(v)} (use ${Object.keys(PROTO_NAMES).join(', ')} or a number 0-255)`, path);
  };

  const acls: Acl[] = [];
  if (root.acls !== undefined && !Array.isArray(root.acls)) fail('"acls" must be a list', 'acls');
  ((root.acls as JsonValue[] | undefined) ?? []).forEach((raw, index) => {
    const path = `acls.${index}`;
    const rule = obj(raw, path, `acls[${index}]`);
    for (const k of Object.keys(rule)) if (!['action', 'src', 'dst', 'proto'].includes(k)) fail(`unknown field "${k}" in an ACL rule`, `${path}.${k}@key`);
    if (rule.action !== 'accept') fail(`"action" must be "accept" (anything not accepted is denied)`, rule.action === undefined ? path : `${path}.action`);
    const src = strings(rule.src, rule.src === undefined ? path : `${path}.src`, '"src"').map((s, i) => target(s, `${path}.src.${i}`, 'src'));
    const dst = strings(rule.dst, rule.dst === undefined ? path : `${path}.dst`, '"dst"').map((d, i) => {
      const p = `${path}.dst.${i}`;
      const [t, ps] = splitHostPort(d, p);
      return { text: d, target: target(t, p, 'dst'), ports: ports(ps, p) };
    });
    if (src.length === 0 || dst.length === 0) fail('an ACL rule needs at least one "src" and one "dst"', path);
    const pr = proto(rule.proto, `${path}.proto`);
    acls.push({ index, position: at(path)!, src, dst, protos: pr === undefined ? [] : [pr] });
  });

  const tests: PolicyTest[] = [];
  if (root.tests !== undefined && !Array.isArray(root.tests)) fail('"tests" must be a list', 'tests');
  ((root.tests as JsonValue[] | undefined) ?? []).forEach((raw, index) => {
    const path = `tests.${index}`;
    const t = obj(raw, path, `tests[${index}]`);
    for (const k of Object.keys(t)) if (!['src', 'accept', 'deny', 'proto'].includes(k)) fail(`unknown field "${k}" in a test`, `${path}.${k}@key`);
    if (typeof t.src !== 'string') fail('a test needs "src" (a user, tag, host or IP)', t.src === undefined ? path : `${path}.src`);
    const flows = (key: 'accept' | 'deny') =>
      t[key] === undefined
        ? []
        : strings(t[key], `${path}.${key}`, `"${key}"`).map((f, i) => {
            const p = `${path}.${key}.${i}`;
            const [tt, ps] = splitHostPort(f, p);
            if (!/^[0-9]{1,5}$/.test(ps) || Number(ps) > 65535) fail(`a test flow needs one port, e.g. "tag:server:22", not "${ps}"`, p);
            return { text: f, position: at(p)!, target: target(tt, p, 'test-dst'), port: Number(ps) };
          });
    tests.push({
      index,
      position: at(path)!,
      src: t.src as string,
      srcTarget: target(t.src as string, `${path}.src`, 'test-src'),
      proto: proto(t.proto, `${path}.proto`) ?? 6,
      accept: flows('accept'),
      deny: flows('deny'),
    });
  });

  return { filename, groups, tagOwners, hosts, acls, tests };
}
