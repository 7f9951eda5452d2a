/**
 * The server's in-memory nodes by id, also indexed by machine key and name so a request or a
 * registration costs O(1) instead of a scan of every node. A node's machine key and name
 * never change after it is created (rotation changes only the node key).
 */
import type { NodeRecord } from './store.js';

export class NodeTable extends Map<string, NodeRecord> {
  private readonly machines = new Map<string, NodeRecord>();
  private readonly names = new Set<string>();

  override set(id: string, n: NodeRecord): this {
    const old = super.get(id);
    if (old) this.forget(old);
    super.set(id, n);
    this.machines.set(n.machineKey, n);
    this.names.add(n.name);
    return this;
  }

  override delete(id: string): boolean {
    const old = super.get(id);
    if (old) this.forget(old);
    return super.delete(id);
  }

  override clear(): void {
    this.machines.clear();
    this.names.clear();
    super.clear();
  }

  byMachine(machineKey: string): NodeRecord | undefined {
    return this.machines.get(machineKey);
  }

  /** `base`, or `base-1`, `base-2`, … whichever is free first. */
  uniqueName(base: string): string {
    if (!this.names.has(base)) return base;
    for (let i = 1; ; i++) if (!this.names.has(`${base}-${i}`)) return `${base}-${i}`;
  }

  private forget(n: NodeRecord): void {
    if (this.machines.get(n.machineKey) === n) this.machines.delete(n.machineKey);
    this.names.delete(n.name);
  }
}
