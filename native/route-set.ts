/**
 * The routes into a TUN, changed live: set() diffs the wanted list against what is
 * installed and runs the platform's add/delete for the difference, one change at a time.
 * A failed change leaves the set as it was for that route, so the next set() retries it.
 */
import { checkCidr } from './ip-config.js';

export class RouteSet {
  private readonly installed: Set<string>;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    initial: string[],
    private readonly add: (cidr: string) => Promise<void>,
    private readonly del: (cidr: string) => Promise<void>,
  ) {
    this.installed = new Set(initial);
  }

  async set(routes: string[]): Promise<void> {
    const wanted = new Set(routes.map(checkCidr));
    const run = this.chain.then(async () => {
      for (const r of wanted) if (!this.installed.has(r)) await this.add(r).then(() => this.installed.add(r));
      for (const r of [...this.installed]) if (!wanted.has(r)) await this.del(r).then(() => this.installed.delete(r));
    });
    this.chain = run.catch(() => undefined);
    await run;
  }
}
