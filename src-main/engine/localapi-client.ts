/** A typed client for the LocalAPI over its Unix socket; used by the CLI and the desktop shell. */
import { request } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { PingResponse, Status, UpRequest, UpResponse } from '../protocol/localapi.js';

/** Root's daemon listens in /run; a user's daemon in its runtime dir. PIERCE_SOCKET overrides both. */
export const DEFAULT_SOCKET =
  process.env.PIERCE_SOCKET ??
  (process.getuid?.() === 0 ? '/run/pierce/pierced.sock' : join(process.env.XDG_RUNTIME_DIR ?? join(homedir(), '.local', 'state'), 'pierce', 'pierced.sock'));

/** Where the daemon keeps its keys unless --state-dir says otherwise. */
export const DEFAULT_STATE_DIR =
  process.env.PIERCE_STATE_DIR ?? (process.getuid?.() === 0 ? '/var/lib/pierce' : join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'pierce'));

export class LocalApiClient {
  constructor(readonly socketPath: string = DEFAULT_SOCKET) {}

  call<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        { socketPath: this.socketPath, agent: false, method, path, headers: payload ? { 'content-type': 'application/json' } : {}, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let value: unknown;
            try {
              value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              return reject(new Error(`LocalAPI ${path}: malformed response`));
            }
            if ((res.statusCode ?? 500) >= 400) return reject(new Error((value as { error?: string }).error ?? `LocalAPI ${path}: HTTP ${res.statusCode}`));
            resolve(value as T);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`LocalAPI ${path}: timed out`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')
          reject(new Error(`no Pierce daemon is listening on ${this.socketPath}: start one with \`pierce daemon\``));
        else if (err.code === 'EACCES') reject(new Error(`permission denied on ${this.socketPath}: run as the daemon's user`));
        else reject(err);
      });
      req.end(payload);
    });
  }

  status(): Promise<Status> {
    return this.call('GET', '/v1/status');
  }
  up(req: UpRequest): Promise<UpResponse> {
    return this.call('POST', '/v1/up', req, 15 * 60_000);
  }
  down(): Promise<Status> {
    return this.call('POST', '/v1/down');
  }
  ping(peer: string): Promise<PingResponse> {
    return this.call('POST', '/v1/ping', { peer }, 60_000);
  }
  netcheck(): Promise<unknown> {
    return this.call('GET', '/v1/netcheck', undefined, 60_000);
  }
}
