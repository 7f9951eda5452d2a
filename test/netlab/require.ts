/**
 * Preconditions for tests that drive real system parts. They fail (never skip) with a
 * message that names the fix, so a CI run without the Debian packages is red, not green.
 */
import { execFileSync } from 'node:child_process';

export interface Tool {
  cmd: string;
  /** The Debian package that provides it. */
  pkg: string;
}

function onPath(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function requireTools(tools: Tool[]): void {
  const missing = tools.filter((t) => !onPath(t.cmd));
  if (missing.length)
    throw new Error(`missing ${missing.map((t) => `\`${t.cmd}\``).join(', ')}: install the Debian package(s) ${[...new Set(missing.map((t) => t.pkg))].join(' ')} (apt-get install ${[...new Set(missing.map((t) => t.pkg))].join(' ')})`);
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('this test builds network namespaces and needs root (run it as root, as CI does)');
}

export const NETLAB_TOOLS: Tool[] = [
  { cmd: 'ip', pkg: 'iproute2' },
  { cmd: 'iptables', pkg: 'iptables' },
  { cmd: 'tc', pkg: 'iproute2' },
];
