// A small HTTP/1.1 client for UPnP (device description and SOAP), hardened against hostile
// gateways: an overall deadline, a response size cap, and only a few same-host redirects.
import http from 'node:http';
import { PortmapError } from './errors.js';

export interface HttpFetchOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  /** Redirects are followed only to this host (the gateway), at most maxRedirects times. */
  allowedHost: string;
  maxRedirects?: number;
}

export interface HttpResponse {
  status: number;
  body: string;
  url: URL;
}

function once(url: URL, opts: HttpFetchOptions, deadline: number): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return reject(new PortmapError('timeout', `HTTP ${url.href}: deadline exceeded`));
    const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
    const req = http.request(url, {
      method: opts.method ?? 'GET',
      agent: false,
      headers: { ...opts.headers, Connection: 'close', ...(body ? { 'Content-Length': String(body.length) } : {}) },
    });
    const timer = setTimeout(() => fail(new PortmapError('timeout', `HTTP ${url.href}: no complete response within ${opts.timeoutMs} ms`)), remaining);
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      reject(e);
    };
    req.on('error', (e) => fail(e instanceof PortmapError ? e : new PortmapError('http', `HTTP ${url.href}: ${e.message}`)));
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length'] ?? 0);
      if (declared > opts.maxBytes) return fail(new PortmapError('http', `HTTP ${url.href}: response of ${declared} bytes exceeds ${opts.maxBytes}`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > opts.maxBytes) return fail(new PortmapError('http', `HTTP ${url.href}: response exceeds ${opts.maxBytes} bytes`));
        chunks.push(c);
      });
      res.on('error', (e) => fail(new PortmapError('http', `HTTP ${url.href}: ${e.message}`)));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const location = res.headers.location;
        resolve({ status: res.statusCode ?? 0, location, body: Buffer.concat(chunks).toString('utf8') });
      });
    });
    req.end(body);
  });
}

export async function httpFetch(url: URL, opts: HttpFetchOptions): Promise<HttpResponse> {
  const deadline = Date.now() + opts.timeoutMs;
  let current = url;
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'http:' || current.hostname !== opts.allowedHost) {
      throw new PortmapError('http', `refusing to fetch ${current.href}: only http://${opts.allowedHost} is allowed`);
    }
    const r = await once(current, opts, deadline);
    if (r.status < 300 || r.status >= 400 || r.location === undefined) return { status: r.status, body: r.body, url: current };
    if (hop >= (opts.maxRedirects ?? 3)) throw new PortmapError('http', `HTTP ${url.href}: too many redirects`);
    try {
      current = new URL(r.location, current);
    } catch {
      throw new PortmapError('http', `HTTP ${current.href}: invalid redirect location`);
    }
  }
}
