/**
 * Starts a worker thread from a module next to the caller. When running from TypeScript
 * sources (tsx), the worker is bootstrapped through tsx's loader, because workers do not
 * inherit loader hooks registered with tsx's API in the parent (as bin/pierce.js does).
 */
import { Worker } from 'node:worker_threads';

export function spawnWorker(moduleUrl: URL, workerData: unknown): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, { workerData });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); });`;
  return new Worker(boot, { eval: true, workerData });
}
