/**
 * Deciding flows. An identity is who a packet comes from or goes to: a user's
 * device, a tagged device, or a bare address. A flow is allowed when the first ACL
 * whose source, destination, port and protocol all match says so; that rule (or none)
 * is what error messages name. Tagged devices are owned by their tags, not by a user.
 */
import { cidrContains, formatCidr } from '../protocol/ip.js';
import { DEFAULT_PROTOS, type Acl, type Policy, type PolicyTest, type Target, type TestFlow } from './policy.js';

export interface Identity {
  user?: string;
  tags: string[];
  addresses: Uint8Array[];
}

export function matchesTarget(t: Target, id: Identity): boolean {
  const tagged = id.tags.length > 0;
  switch (t.kind) {
    case 'any':
      return true;
    case 'user':
      return !tagged && id.user === t.user;
    case 'group':
      return !tagged && id.user !== undefined && t.users.includes(id.user);
    case 'tag':
      return id.tags.includes(t.tag);
    case 'autogroup':
      if (t.name === 'tagged') return tagged;
      // member, and self (whose same-user condition is checked by the caller).
      return !tagged && id.user !== undefined;
    case 'cidr':
      return id.addresses.some((a) => cidrContains(t.cidr, a));
    default: {
      const never: never = t;
      throw new Error(`unknown target ${JSON.stringify(never)}`);
    }
  }
}

/** Whether `dst` covers the destination, honouring autogroup:self's same-user rule. */
export function dstMatches(t: Target, src: Identity, dst: Identity): boolean {
  if (t.kind === 'autogroup' && t.name === 'self') return matchesTarget(t, dst) && src.tags.length === 0 && src.user === dst.user;
  return matchesTarget(t, dst);
}

export function aclProtos(acl: Acl): number[] {
  return acl.protos.length ? acl.protos : DEFAULT_PROTOS;
}

/** The first rule that allows src → dst:port/proto, or undefined (default deny). */
export function decidingRule(policy: Policy, src: Identity, dst: Identity, port: number, proto: number): Acl | undefined {
  const icmp = proto === 1 || proto === 58;
  for (const acl of policy.acls) {
    if (!aclProtos(acl).includes(proto)) continue;
    if (!acl.src.some((t) => matchesTarget(t, src))) continue;
    if (acl.dst.some((d) => dstMatches(d.target, src, dst) && (icmp || d.ports.some((r) => port >= r.first && port <= r.last)))) return acl;
  }
  return undefined;
}

/**
 * The identities a test's src or dst stands for. Against a world, those are the real
 * nodes with that identity (one per distinct user/tags combination, or every node when
 * the policy has CIDR targets and addresses matter); an IP is the node holding it. A
 * user or tag with no node in the world (or no world at all) gets a synthesised device:
 * that user's untagged device, or a device carrying just that tag, with no addresses,
 * so it matches identity rules but no CIDR rule. An IP or host without a node is a bare
 * address that matches only CIDR rules.
 */
export function identitiesOf(t: Target, world?: WorldIdentities): Identity[] {
  const real = (match: (id: Identity) => boolean, fallback: Identity): Identity[] => {
    const found = world?.pick(match) ?? [];
    return found.length ? found : [fallback];
  };
  switch (t.kind) {
    case 'user':
      return real((id) => matchesTarget(t, id), { user: t.user, tags: [], addresses: [] });
    case 'group':
      return t.users.flatMap((user) => identitiesOf({ kind: 'user', user }, world));
    case 'tag':
      return real((id) => matchesTarget(t, id), { tags: [t.tag], addresses: [] });
    case 'cidr': {
      const bare = { tags: [], addresses: [t.cidr.addr] };
      const isHost = t.cidr.bits === t.cidr.addr.length * 8;
      return isHost ? real((id) => id.addresses.some((a) => cidrContains(t.cidr, a)), bare) : [bare];
    }
    case 'any':
    case 'autogroup':
      throw new Error(`tests cannot use ${t.kind} as an identity`);
    default: {
      const never: never = t;
      throw new Error(`unknown target ${JSON.stringify(never)}`);
    }
  }
}

/** The nodes of a world as test identities, deduplicated by what the policy can tell apart. */
export class WorldIdentities {
  private readonly ids: Identity[];

  constructor(policy: Policy, nodes: Identity[]) {
    const addressesMatter = policy.acls.some((a) => a.src.some((t) => t.kind === 'cidr') || a.dst.some((d) => d.target.kind === 'cidr'));
    const seen = new Set<string>();
    this.ids = nodes.filter((id) => {
      const key = `${id.user ?? ''}|${[...id.tags].sort().join(',')}${addressesMatter ? `|${id.addresses.map((a) => a.join('.')).join(',')}` : ''}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  pick(match: (id: Identity) => boolean): Identity[] {
    return this.ids.filter(match);
  }
}

export interface PolicyTestResult {
  test: number;
  src: string;
  flow: string;
  proto: number;
  expected: 'accept' | 'deny';
  actual: 'accept' | 'deny';
  pass: boolean;
  /** The ACL that allowed the flow, if any (index and line). */
  rule?: { index: number; line: number };
  /** A sentence for humans, naming the test, flow, expectation and the deciding rule. */
  message: string;
  line: number;
  column: number;
}

const PROTO_TEXT: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' };

/** Runs the policy's tests, against synthesised identities or, given `nodes`, the real ones. */
export function runTests(policy: Policy, nodes?: Identity[]): PolicyTestResult[] {
  const world = nodes ? new WorldIdentities(policy, nodes) : undefined;
  const results: PolicyTestResult[] = [];
  const run = (t: PolicyTest, flow: TestFlow, expected: 'accept' | 'deny') => {
    const srcs = identitiesOf(t.srcTarget, world);
    const dsts = identitiesOf(flow.target, world);
    // accept must hold for every (src, dst) pair the names stand for; deny for none of them.
    let rule: Acl | undefined;
    let all = true;
    for (const s of srcs)
      for (const d of dsts) {
        const r = decidingRule(policy, s, d, flow.port, t.proto);
        if (!r) all = false;
        rule ??= r;
      }
    const actual = (expected === 'accept' ? all : rule !== undefined) ? 'accept' : 'deny';
    const proto = PROTO_TEXT[t.proto] ?? `proto ${t.proto}`;
    const where = rule && `acls[${rule.index}] (line ${rule.position.line})`;
    const decided = !rule ? 'no rule allows it (default deny)' : all ? `allowed by ${where}` : `allowed for only some of the devices they stand for, by ${where}`;
    const pass = actual === expected;
    results.push({
      test: t.index,
      src: t.src,
      flow: `${t.src} -> ${flow.text}/${proto}`,
      proto: t.proto,
      expected,
      actual,
      pass,
      rule: rule ? { index: rule.index, line: rule.position.line } : undefined,
      message: `${pass ? 'ok' : 'FAIL'} tests[${t.index}] (src ${t.src}): ${flow.text}/${proto} expected ${expected}, got ${actual}: ${decided}`,
      line: flow.position.line,
      column: flow.position.column,
    });
  };
  for (const t of policy.tests) {
    for (const f of t.accept) run(t, f, 'accept');
    for (const f of t.deny) run(t, f, 'deny');
  }
  return results;
}

export function describeTarget(t: Target): string {
  switch (t.kind) {
    case 'any':
      return '*';
    case 'user':
      return t.user;
    case 'group':
      return t.group;
    case 'tag':
      return t.tag;
    case 'autogroup':
      return `autogroup:${t.name}`;
    case 'cidr':
      return t.host ?? formatCidr(t.cidr);
    default: {
      const never: never = t;
      return String(never);
    }
  }
}
