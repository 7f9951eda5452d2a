/**
 * From a policy and the nodes that exist to what each node enforces and sees:
 * per-node packet-filter rules (for packets arriving at that node) and the set of
 * peers it may talk to in either direction.
 *
 * `PolicyIndex` keeps, for every ACL, the set of nodes its sources match and, per
 * destination entry, the nodes it covers. One node's peers or filter then cost
 * O(rules + size of the answer) instead of a scan of every node, and a node joining,
 * leaving or changing tags updates the sets in O(targets) and reports which nodes'
 * views may have changed (`upsertNode` / `removeNode`).
 */
import { type FilterRule, type PortRange } from '../protocol/filter.js';
import { cidrContains, formatCidr, parseIp } from '../protocol/ip.js';
import { aclProtos, type Identity, matchesTarget } from './evaluate.js';
import type { Acl, Policy } from './policy.js';

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
  /** Known user logins (informational; users without nodes are synthesised by the tests runner). */
  users?: string[];
}

interface IndexedNode {
  node: PolicyNode;
  id: Identity;
  /** Canonical host prefixes of the node's valid addresses ("100.64.0.1/32"). */
  hostCidrs: string[];
  /** The user whose autogroup:self this node belongs to (untagged and owned), if any. */
  selfUser?: string;
}

type NodeSet = Set<string> | 'all';

interface IndexedAcl {
  acl: Acl;
  /** Nodes matched by any src target ('all' for "*"). */
  src: NodeSet;
  /** Nodes matched by a src target other than a CIDR (their addresses go into filters). */
  srcByIdentity: Set<string>;
  /** Literal CIDR sources, already formatted. */
  srcLiteral: string[];
  /** Per dst entry, the nodes it covers; autogroup:self is resolved per source. */
  dst: (NodeSet | 'self')[];
  /** Cached filter sources (invalidated when a source node changes). */
  srcCidrs?: string[];
}

const ANY_SRC = ['0.0.0.0/0', '::/0'];

export class PolicyIndex {
  private readonly nodes = new Map<string, IndexedNode>();
  /** autogroup:self: owner → their untagged nodes. */
  private readonly byUser = new Map<string, Set<string>>();
  private readonly acls: IndexedAcl[];

  constructor(
    readonly policy: Policy,
    world: PolicyWorld,
  ) {
    this.acls = policy.acls.map((acl) => {
      const anySrc = acl.src.some((t) => t.kind === 'any');
      return {
        acl,
        src: anySrc ? 'all' : new Set<string>(),
        srcByIdentity: new Set<string>(),
        srcLiteral: anySrc ? ANY_SRC : acl.src.flatMap((t) => (t.kind === 'cidr' ? [formatCidr(t.cidr)] : [])),
        dst: acl.dst.map((d) => (d.target.kind === 'any' ? 'all' : d.target.kind === 'autogroup' && d.target.name === 'self' ? 'self' : new Set<string>())),
      };
    });
    for (const n of world.nodes) this.add(n);
  }

  /** Adds or replaces a node; returns the nodes whose peers or filter may have changed (it included). */
  upsertNode(node: PolicyNode): Set<string> {
    const affected = this.nodes.has(node.id) ? this.peersOf(node.id) : new Set<string>();
    this.drop(node.id);
    this.add(node);
    for (const p of this.peersOf(node.id)) affected.add(p);
    affected.add(node.id);
    return affected;
  }

  /** Removes a node; returns the nodes whose peers or filter may have changed. */
  removeNode(id: string): Set<string> {
    const affected = this.peersOf(id);
    this.drop(id);
    return affected;
  }

  private add(n: PolicyNode): void {
    const id = toIdentity(n);
    const selfUser = id.tags.length === 0 ? id.user : undefined;
    const hostCidrs = id.addresses.map((a) => formatCidr({ addr: a, bits: a.length * 8 }));
    this.nodes.set(n.id, { node: n, id, hostCidrs, selfUser });
    if (selfUser !== undefined) {
      let set = this.byUser.get(selfUser);
      if (!set) this.byUser.set(selfUser, (set = new Set()));
      set.add(n.id);
    }
    for (const x of this.acls) {
      let inSrc = false;
      for (const t of x.acl.src) {
        if (t.kind === 'any' || !matchesTarget(t, id)) continue;
        inSrc = true;
        if (t.kind !== 'cidr') x.srcByIdentity.add(n.id);
      }
      if (inSrc && x.src !== 'all') x.src.add(n.id);
      if (x.srcByIdentity.has(n.id)) x.srcCidrs = undefined;
      x.acl.dst.forEach((d, i) => {
        const set = x.dst[i];
        if (typeof set !== 'string' && matchesTarget(d.target, id)) set.add(n.id);
      });
    }
  }

  private drop(nodeId: string): void {
    const old = this.nodes.get(nodeId);
    if (!old) return;
    this.nodes.delete(nodeId);
    if (old.selfUser !== undefined) this.byUser.get(old.selfUser)?.delete(nodeId);
    for (const x of this.acls) {
      if (x.src !== 'all') x.src.delete(nodeId);
      if (x.srcByIdentity.delete(nodeId)) x.srcCidrs = undefined;
      for (const set of x.dst) if (typeof set !== 'string') set.delete(nodeId);
    }
  }

  /** Whether `a` may open any flow to `b`. O(rules). */
  canReach(a: string, b: string): boolean {
    const src = this.nodes.get(a);
    const dst = this.nodes.get(b);
    if (a === b || !src || !dst) return false;
    return this.acls.some((x) => has(x.src, a) && x.dst.some((d) => (d === 'self' ? sameSelf(src, dst) : has(d, b))));
  }

  /** Peers `id` may talk to in either direction. O(rules + peers). */
  peersOf(id: string): Set<string> {
    const me = this.nodes.get(id);
    const out = new Set<string>();
    if (!me) return out;
    const mine = me.selfUser !== undefined ? (this.byUser.get(me.selfUser) ?? new Set<string>()) : new Set<string>();
    for (const x of this.acls) {
      if (has(x.src, id)) {
        for (const d of x.dst) {
          if (d === 'all') return this.allBut(id);
          for (const p of d === 'self' ? mine : d) out.add(p);
        }
      }
      const reached = x.dst.some((d) => d !== 'self' && has(d, id));
      if (reached && x.src === 'all') return this.allBut(id);
      if (reached) for (const p of x.src as Set<string>) out.add(p);
      else if (x.dst.includes('self')) for (const p of mine) if (has(x.src, p)) out.add(p);
    }
    out.delete(id);
    return out;
  }

  private allBut(id: string): Set<string> {
    const out = new Set(this.nodes.keys());
    out.delete(id);
    return out;
  }

  /** Filter rules for packets arriving at node `id`. O(rules + size of the rules). */
  filterFor(id: string): FilterRule[] {
    const me = this.nodes.get(id);
    if (!me) return [];
    const rules: FilterRule[] = [];
    const dsts = (ports: PortRange[]) => ports.flatMap((p) => me.hostCidrs.map((cidr) => ({ cidr, ports: p })));
    for (const x of this.acls) {
      const covered: FilterRule['dsts'] = [];
      const selfPorts: PortRange[] = [];
      x.acl.dst.forEach((d, i) => {
        const set = x.dst[i];
        if (set === 'self') {
          if (me.selfUser !== undefined) selfPorts.push(...d.ports);
          return;
        }
        if (!has(set, id)) return;
        // A CIDR destination covers only this node's addresses inside it.
        const t = d.target;
        const mine = t.kind === 'cidr' ? me.hostCidrs.filter((_, k) => cidrContains(t.cidr, me.id.addresses[k])) : me.hostCidrs;
        for (const p of d.ports) for (const cidr of mine) covered.push({ cidr, ports: p });
      });
      const protos = aclProtos(x.acl);
      if (covered.length) {
        const srcs = this.sourceCidrs(x);
        if (srcs.length) rules.push({ srcs, dsts: covered, protos });
      }
      if (selfPorts.length) {
        // Only the same user's untagged devices that the rule's sources match.
        const srcs = [...(this.byUser.get(me.selfUser!) ?? [])].flatMap((p) => this.sourceAddressesOf(x, this.nodes.get(p)!));
        if (srcs.length) rules.push({ srcs, dsts: dsts(selfPorts), protos });
      }
    }
    return rules;
  }

  /** The addresses of `n` that an ACL's sources admit: all of them for an identity match, else those inside a CIDR source. */
  private sourceAddressesOf(x: IndexedAcl, n: IndexedNode): string[] {
    if (x.src === 'all' || x.srcByIdentity.has(n.node.id)) return n.hostCidrs;
    return n.hostCidrs.filter((_, k) => x.acl.src.some((t) => t.kind === 'cidr' && cidrContains(t.cidr, n.id.addresses[k])));
  }

  /** An ACL's source prefixes: its literal CIDRs plus the addresses of the nodes its identities match. */
  private sourceCidrs(x: IndexedAcl): string[] {
    if (x.src === 'all') return x.srcLiteral;
    if (!x.srcCidrs) {
      const out = new Set(x.srcLiteral);
      for (const p of x.srcByIdentity) for (const c of this.nodes.get(p)!.hostCidrs) out.add(c);
      x.srcCidrs = [...out];
    }
    return x.srcCidrs;
  }
}

const has = (set: NodeSet, id: string) => set === 'all' || set.has(id);

/** autogroup:self: both untagged devices of the same user. */
const sameSelf = (a: IndexedNode, b: IndexedNode) => a.selfUser !== undefined && a.selfUser === b.selfUser;

export function toIdentity(n: PolicyNode): Identity {
  return { user: n.tags.length ? undefined : n.user, tags: n.tags, addresses: n.addresses.map((a) => parseIp(a)).filter((a): a is Uint8Array => !!a) };
}

export function compileFilter(policy: Policy, node: PolicyNode, world: PolicyWorld): FilterRule[] {
  const nodes = world.nodes.some((n) => n.id === node.id) ? world.nodes : [...world.nodes, node];
  return new PolicyIndex(policy, { nodes }).filterFor(node.id);
}

/** Every node's peers. The answer itself is O(nodes²) for broad policies; servers should call `PolicyIndex.peersOf` per node. */
export function visiblePeers(policy: Policy, world: PolicyWorld): Map<string, Set<string>> {
  const index = new PolicyIndex(policy, world);
  return new Map(world.nodes.map((n) => [n.id, index.peersOf(n.id)]));
}
