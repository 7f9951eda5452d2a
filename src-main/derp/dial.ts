/**
 * Opens the byte stream a DERP client speaks over: `GET /derp` with `Upgrade: DERP`
 * (HTTP/1.1 101), or a WebSocket with subprotocol "derp" for networks that pass only HTTP.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocket, createWebSocketStream } from 'ws';

export interface DialOptions {
  url: string;
  websocket?: boolean;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  timeoutMs: number;
}

export async function dialDerp(o: DialOptions): Promise<Duplex> {
  const url = new URL(o.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`derp: URL must be http(s)://, got ${o.url}`);
  return o.websocket ? dialWebSocket(url, o) : dialUpgrade(url, o);
}

function dialUpgrade(url: URL, o: DialOptions): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const opts: https.RequestOptions = {
      method: 'GET',
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (secure ? 443 : 80),
      path: url.pathname + url.search,
      headers: { Connection: 'Upgrade', Upgrade: 'DERP' },
      timeout: o.timeoutMs,
      agent: false,
    };
    if (secure) Object.assign(opts, o.tls);
    const req = (secure ? https : http).request(opts);
    req.on('upgrade', (_res, socket, head) => {
      socket.setNoDelay(true);
      socket.setTimeout(0);
      if (head.length) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res) => {
      res.resume();
      reject(new Error(`derp: ${url.host} answered HTTP ${res.statusCode} instead of upgrading`));
    });
    req.on('timeout', () => req.destroy(new Error(`derp: connecting to ${url.host} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function dialWebSocket(url: URL, o: DialOptions): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const wsUrl = `${url.protocol === 'https:' ? 'wss' : 'ws'}://${url.host}${url.pathname}${url.search}`;
    const ws = new WebSocket(wsUrl, 'derp', { perMessageDeflate: false, handshakeTimeout: o.timeoutMs, ...o.tls });
    ws.once('open', () => {
      if (ws.protocol !== 'derp') {
        ws.terminate();
        reject(new Error('derp: server did not accept the "derp" WebSocket subprotocol'));
        return;
      }
      resolve(createWebSocketStream(ws));
    });
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(new Error(`derp: ${url.host} answered HTTP ${res.statusCode} instead of a WebSocket`));
    });
    ws.once('error', reject);
  });
}
