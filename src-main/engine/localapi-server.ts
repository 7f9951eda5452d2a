/**
 * Serves the LocalAPI (src-main/protocol/localapi.ts) over HTTP on a Unix socket.
 * Access control, in depth: the socket lives in a 0700 directory, the socket file is
 * 0600, and on Linux every connection's SO_PEERCRED uid must be the daemon's own or root.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { peerCred } from './peercred.js';

export type Handler = (body: unknown, url: URL) => Promise<unknown>;
export type Routes = Record<string, Handler>;

const MAX_BODY = 1 << 20;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
}

export class LocalApiServer {
  private readonly server: Server;

  private constructor(
    readonly socketPath: string,
    routes: Routes,
  ) {
    const ownUid = process.getuid?.() ?? 0;
    this.server = createServer((req, res) => void this.handle(routes, req, res));
    this.server.on('connection', (sock) => {
      const cred = peerCred(sock);
      if (cred && cred.uid !== ownUid && cred.uid !== 0) sock.destroy();
    });
  }

  static async listen(socketPath: string, routes: Routes): Promise<LocalApiServer> {
    const dir = dirname(socketPath);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (existsSync(socketPath)) unlinkSync(socketPath);
    const api = new LocalApiServer(socketPath, routes);
    await new Promise<void>((resolve, reject) => {
      api.server.once('error', reject);
      api.server.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
    return api;
  }

  private async handle(routes: Routes, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const key = `${req.method} ${url.pathname}`;
    const send = (status: number, value: unknown) => {
      const body = JSON.stringify(value);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    const handler = routes[key];
    if (!handler) return send(404, { error: `no such LocalAPI endpoint: ${key}` });
    try {
      send(200, (await handler(await readJson(req), url)) ?? {});
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      send(status, { error: err instanceof Error ? err.message : String(err) });
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (existsSync(this.socketPath)) unlinkSync(this.socketPath);
  }
}
