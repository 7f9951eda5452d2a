/**
 * From a policy and the nodes that exist to what each node enforces and sees:
 * per-node packet-filter rules (for packets arriving at that node) and the set of
 * peers it may talk to in either direction. `PolicyIndex` resolves every ACL's source
 * and destination to node sets once, so one node's view costs O(rules × matches), and
 * the coordination server can ask for one node's peers when only that node changed.
 */
import { type FilterRule, type PortRange } from '../protocol/filter.js';
import { formatCidr, parseIp } from '../protocol/ip.js';
import { aclProtos, dstMatches, type Identity, matchesTarget } from './evaluate.js';
import type { Acl, Policy, Target } from './policy.js';

export interface PolicyNode {
  id: string;
  /** The owning user's login, e.g. alice@example.com; tagged nodes are owned by their tags. */
  user?: string;
  tags: string[];
  /** Tunnel addresses, e.g. 100.64.0.1 and fd7a:…::1. */
  addresses: string[];
}

export interface PolicyWorld {
  nodes: PolicyNode[];
}

interface IndexedNode {
  node: PolicyNode;
  id: Identity;
}

interface IndexedAcl {
  acl: Acl;
  /** Nodes matched by any src target, or 'all' for "*". */
  srcNodes: Set<string> | 'all';
  /** Per dst entry, the nodes it covers ('all' for "*"); autogroup:self is resolved per source. */
  dstNodes: (Set<string> | 'all' | 'self')[];
}

const hostBits = (a: string) => (a.includes(':') ? 128 : 32);

export class PolicyIndex {
  private readonly nodes = new Map<string, IndexedNode>();
  private readonly acls: IndexedAcl[];

  constructor(
    readonly policy: Policy,
    world: PolicyWorld,
  ) {
    for (const n of world.nodes) this.nodes.set(n.id, { node: n, id: toIdentity(n) });
    this.acls = policy.acls.map((acl) => ({
      acl,
      srcNodes: acl.src.some((t) => t.kind === 'any') ? 'all' : this.resolve(acl.src),
      dstNodes: acl.dst.map((d) => (d.target.kind === 'any' ? 'all' : d.target.kind === 'autogroup' && d.target.name === 'self' ? 'self' : this.resolve([d.target]))),
    }));
  }

  private resolve(targets: Target[]): Set<string> {
    const out = new Set<string>();
    for (const n of this.nodes.values()) if (targets.some((t) => matchesTarget(t, n.id))) out.add(n.node.id);
    return out;
  }

  private inSet(set: Set<string> | 'all' | 'self', id: string, src?: IndexedNode): boolean {
    if (set === 'all') return true;
    if (set === 'self') {
      const dst = this.nodes.get(id);
      return !!src && !!dst && dstMatches({ kind: 'autogroup', name: 'self' }, src.id, dst.id);
    }
    return set.has(id);
  }

  /** Whether `a` may open any flow to `b`. */
  canReach(a: string, b: string): boolean {
    if (a === b) return false;
    const src = this.nodes.get(a);
    if (!src || !this.nodes.has(b)) return false;
    return this.acls.some((x) => this.inSet(x.srcNodes, a) && x.dstNodes.some((d) => this.inSet(d, b, src)));
  }

  /** Peers `id` may talk to in either direction. O(rules × nodes) worst case. */
  peersOf(id: string): Set<string> {
    const out = new Set<string>();
    const self = this.nodes.get(id);
    if (!self) return out;
    for (const other of this.nodes.keys()) if (other !== id && (this.canReach(id, other) || this.canReach(other, id))) out.add(other);
    return out;
  }

  /** Filter rules for packets arriving at node `id`. */
  filterFor(id: string): FilterRule[] {
    const me = this.nodes.get(id);
    if (!me) return [];
    const rules: FilterRule[] = [];
    const myDsts = (ports: PortRange) => me.node.addresses.map((a) => ({ cidr: `${a}/${hostBits(a)}`, ports }));
    for (const x of this.acls) {
      const portsHere: PortRange[] = [];
      let selfOnly = true;
      x.acl.dst.forEach((d, i) => {
        const set = x.dstNodes[i];
        const covers = set === 'self' ? me.id.tags.length === 0 && me.id.user !== undefined : set === 'all' || set.has(id);
        if (!covers) return;
        if (set !== 'self') selfOnly = false;
        portsHere.push(...d.ports);
      });
      if (!portsHere.length) continue;
      const srcs = this.sourceCidrs(x, selfOnly ? me : undefined);
      if (!srcs.length) continue;
      rules.push({ srcs, dsts: portsHere.flatMap(myDsts), protos: aclProtos(x.acl) });
    }
    return rules;
  }

  /** The source prefixes of an ACL; restricted to `selfOf`'s own devices for autogroup:self. */
  private sourceCidrs(x: IndexedAcl, selfOf?: IndexedNode): string[] {
    const out = new Set<string>();
    for (const t of x.acl.src) {
      if (t.kind === 'any' && !selfOf) return ['0.0.0.0/0', '::/0'];
      if (t.kind === 'cidr' && !selfOf) out.add(formatCidr(t.cidr));
    }
    for (const n of this.nodes.values()) {
      if (selfOf && !(n.id.tags.length === 0 && n.id.user === selfOf.id.user)) continue;
      if (x.acl.src.some((t) => t.kind !== 'cidr' && matchesTarget(t, n.id))) for (const a of n.node.addresses) out.add(`${a}/${hostBits(a)}`);
    }
    return [...out];
  }
}

function toIdentity(n: PolicyNode): Identity {
  return { user: n.tags.length ? undefined : n.user, tags: n.tags, addresses: n.addresses.map((a) => parseIp(a)).filter((a): a is Uint8Array => !!a) };
}

export function compileFilter(policy: Policy, node: PolicyNode, world: PolicyWorld): FilterRule[] {
  return new PolicyIndex(policy, world).filterFor(node.id);
}

export function visiblePeers(policy: Policy, world: PolicyWorld): Map<string, Set<string>> {
  const index = new PolicyIndex(policy, world);
  return new Map(world.nodes.map((n) => [n.id, index.peersOf(n.id)]));
}
