/** Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, highest first. */
interface ProfileNode {
  id: number;
  hitCount?: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  percent: number;
}

/** The `n` functions with the most self time; the idle pseudo-entry is left out (see idlePercent). */
export function topSelfTime(profile: Profile, n: number): ProfileEntry[] {
  return selfTimes(profile).filter((e) => e.name !== IDLE).slice(0, n);
}

/** Share of the profile the main thread spent idle, waiting for events. */
export function idlePercent(profile: Profile): number {
  return selfTimes(profile).find((e) => e.name === IDLE)?.percent ?? 0;
}

const IDLE = '(idle)';

function selfTimes(profile: Profile): ProfileEntry[] {
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]);
    if (!node) continue;
    const us = deltas[i] ?? 0;
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|src-main|native)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), percent: Math.round((1000 * us) / Math.max(1, total)) / 10 }));
}
