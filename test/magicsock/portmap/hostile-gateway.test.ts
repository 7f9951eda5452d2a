// hostile gateway (fake): gateways on loopback that lie, truncate, stall, flood and loop.
// Every case must end in a typed PortmapError, never a crash, and leave no socket or timer.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { PortmapError } from '../../../src-main/magicsock/portmap/errors.js';
import { NatPmpClient } from '../../../src-main/magicsock/portmap/natpmp.js';
import { PcpClient } from '../../../src-main/magicsock/portmap/pcp.js';
import { Portmapper } from '../../../src-main/magicsock/portmap/portmapper.js';
import { UpnpClient } from '../../../src-main/magicsock/portmap/upnp.js';

const GW = '127.0.0.1';
const LEAKABLE = ['UDPWrap', 'TCPWrap', 'TCPSocketWrap', 'TCPServerWrap', 'Timeout'];

function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (LEAKABLE.includes(r)) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

/** Runs `body`, then waits (briefly) for every socket and timer it created to be gone. */
async function noLeaks(body: () => Promise<void>): Promise<void> {
  const before = resources();
  await body();
  const deadline = Date.now() + 2000;
  while (JSON.stringify(resources()) !== JSON.stringify(before)) {
    if (Date.now() > deadline) assert.deepEqual(resources(), before, 'leaked sockets or timers');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const portmapError = (code: string, pattern?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof PortmapError, `expected PortmapError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

/** A fake UDP gateway answering each request with `reply(request)` (or nothing). */
async function udpGateway(reply: (req: Buffer) => Buffer | Buffer[] | undefined, from?: dgram.Socket) {
  const s = dgram.createSocket('udp4');
  s.on('message', (m, r) => {
    const out = reply(m);
    for (const b of out === undefined ? [] : Array.isArray(out) ? out : [out]) (from ?? s).send(b, r.port, r.address);
  });
  await new Promise<void>((res) => s.bind(0, GW, () => res()));
  return { port: (s.address() as AddressInfo).port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

async function udpSocket(address = GW): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res) => s.bind(0, address, () => res()));
  return s;
}

function natpmpMapReply(req: Buffer, patch?: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(16);
  b[1] = 129;
  b.writeUInt32BE(1234, 4);
  req.copy(b, 8, 4, 6);
  b.writeUInt16BE(req.readUInt16BE(6) || 40000, 10);
  b.writeUInt32BE(req.readUInt32BE(8), 12);
  patch?.(b);
  return b;
}

test('hostile gateway (fake): NAT-PMP truncated, wrong version, wrong opcode, silence', async () => {
  await noLeaks(async () => {
    const cases: Array<[string, (req: Buffer) => Buffer | undefined, string, RegExp]> = [
      ['truncated', (req) => natpmpMapReply(req).subarray(0, 9), 'malformed', /truncated/],
      ['wrong version', (req) => natpmpMapReply(req, (b) => (b[0] = 2)), 'malformed', /version 2/],
      ['wrong opcode', (req) => natpmpMapReply(req, (b) => (b[1] = 130)), 'malformed', /opcode 130/],
      ['one byte', () => Buffer.from([0]), 'malformed', /too short/],
      ['silence', () => undefined, 'timeout', /no reply/],
      ['refused', (req) => natpmpMapReply(req, (b) => b.writeUInt16BE(2, 2)), 'result', /Not Authorized/],
    ];
    for (const [name, reply, code, pattern] of cases) {
      const gw = await udpGateway(reply);
      const c = new NatPmpClient({ gateway: GW, port: gw.port, timeoutMs: 300 });
      await assert.rejects(c.map(4000, 4000, 60), portmapError(code, pattern), name);
      c.close();
      await gw.close();
    }
  });
});

test('hostile gateway (fake): replies from another port of the gateway IP are accepted, from another IP ignored', async () => {
  await noLeaks(async () => {
    const otherPort = await udpSocket();
    const gw = await udpGateway((req) => natpmpMapReply(req), otherPort);
    const c = new NatPmpClient({ gateway: GW, port: gw.port, timeoutMs: 1000 });
    const m = await c.map(4000, 4000, 60);
    assert.equal(m.externalPort, 4000);
    c.close();
    await gw.close();

    const stranger = await udpSocket('127.0.0.2');
    const gw2 = await udpGateway((req) => natpmpMapReply(req), stranger);
    const c2 = new NatPmpClient({ gateway: GW, port: gw2.port, timeoutMs: 300 });
    await assert.rejects(c2.map(4000, 4000, 60), portmapError('timeout'));
    c2.close();
    await gw2.close();
    otherPort.close();
    stranger.close();
  });
});

test('hostile gateway (fake): PCP wrong nonce ignored, NAT-PMP-only answer, junk and oversize replies', async () => {
  await noLeaks(async () => {
    const reply = (patch: (b: Buffer, req: Buffer) => Buffer) => (req: Buffer) => {
      const b = Buffer.alloc(60);
      b[0] = 2;
      b[1] = 0x81;
      b.writeUInt32BE(60, 4);
      req.copy(b, 24, 24, 60);
      return patch(b, req);
    };
    const cases: Array<[string, (req: Buffer) => Buffer | undefined, string, RegExp]> = [
      ['wrong nonce', reply((b) => (b.fill(9, 24, 36), b)), 'timeout', /no reply/],
      ['nat-pmp only', () => Buffer.from('008100010000000000000000', 'hex'), 'result', /NAT-PMP only/],
      ['not multiple of 4', reply((b) => b.subarray(0, 59)), 'malformed', /invalid length/],
      ['oversize', reply((b) => Buffer.concat([b, Buffer.alloc(1100)])), 'malformed', /invalid length/],
      ['truncated payload', reply((b) => b.subarray(0, 40)), 'malformed', /truncated/],
      ['no R bit', reply((b) => ((b[1] = 1), b)), 'malformed', /opcode byte/],
      ['refused', reply((b) => ((b[3] = 2), b)), 'result', /NOT_AUTHORIZED/],
    ];
    for (const [name, r, code, pattern] of cases) {
      const gw = await udpGateway(r);
      const c = new PcpClient({ gateway: GW, port: gw.port, timeoutMs: 300 });
      await assert.rejects(c.map(4000, 4000, 60), portmapError(code, pattern), name);
      c.close();
      await gw.close();
    }
  });
});

test('hostile gateway (fake): close() during a request rejects it with "closed" and frees everything', async () => {
  await noLeaks(async () => {
    const gw = await udpGateway(() => undefined);
    const c = new NatPmpClient({ gateway: GW, port: gw.port, timeoutMs: 10_000 });
    const p = c.externalAddress();
    setTimeout(() => c.close(), 50);
    await assert.rejects(p, portmapError('closed'));
    await gw.close();
  });
});

interface FakeUpnp {
  ssdpPort: number;
  requests: string[];
  close(): Promise<void>;
}

/** A fake UPnP IGD: SSDP on UDP, description and control over HTTP, behaviour per path. */
async function fakeUpnp(handler: (req: http.IncomingMessage, body: string, res: http.ServerResponse, base: string) => void, location = '/desc.xml'): Promise<FakeUpnp> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url} ${req.headers.soapaction ?? ''} ${body}`);
      handler(req, body, res, `http://${GW}:${(server.address() as AddressInfo).port}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, GW, () => r()));
  const httpPort = (server.address() as AddressInfo).port;
  const ssdp = await udpGateway(() => Buffer.from(`HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: ${location.startsWith('/') ? `http://${GW}:${httpPort}${location}` : location}\r\n\r\n`));
  return {
    ssdpPort: ssdp.port,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await ssdp.close();
    },
  };
}

const descriptionXml = (serviceType: string) =>
  `<?xml version="1.0"?><root><device><serviceList><service><serviceType>${serviceType}</serviceType><controlURL>/ctl</controlURL></service></serviceList></device></root>`;

const soapOk = (action: string, inner = '') =>
  `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:${action}Response xmlns:u="x">${inner}</u:${action}Response></s:Body></s:Envelope>`;
const soapFault = (code: number, desc: string) =>
  `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode><errorDescription>${desc}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>`;

test('hostile gateway (fake): UPnP huge, slow, redirect-looping, DTD-laden and off-host descriptions', async () => {
  await noLeaks(async () => {
    const cases: Array<[string, (req: http.IncomingMessage, body: string, res: http.ServerResponse, base: string) => void, string, RegExp, string?]> = [
      ['huge streamed', (_q, _b, res) => {
        res.writeHead(200);
        const chunk = Buffer.alloc(16 * 1024, 'a');
        const pump = () => { while (res.write(chunk)); };
        res.on('drain', pump);
        pump();
      }, 'http', /exceeds/],
      ['huge declared', (_q, _b, res) => { res.writeHead(200, { 'Content-Length': String(1e9) }); res.write('<root>'); }, 'http', /exceeds/],
      ['slow', (_q, _b, res) => { res.writeHead(200); res.write('<root>'); }, 'timeout', /no complete response/],
      ['redirect loop', (_q, _b, res) => { res.writeHead(302, { Location: '/desc.xml' }); res.end(); }, 'http', /too many redirects/],
      ['redirect off-host', (_q, _b, res) => { res.writeHead(302, { Location: 'http://127.0.0.2/desc.xml' }); res.end(); }, 'http', /only http:\/\/127\.0\.0\.1/],
      ['entity bomb', (_q, _b, res) => res.end('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><root>&lol2;</root>'), 'malformed', /DTD/],
      ['no WAN service', (_q, _b, res) => res.end(descriptionXml('urn:schemas-upnp-org:service:Layer3Forwarding:1')), 'malformed', /no WANIPConnection/],
      ['404', (_q, _b, res) => { res.writeHead(404); res.end(); }, 'http', /status 404/],
      ['off-host LOCATION', (_q, _b, res) => res.end(descriptionXml('urn:schemas-upnp-org:service:WANIPConnection:1')), 'http', /refusing/, 'http://127.0.0.2:1/desc.xml'],
    ];
    for (const [name, handler, code, pattern, location] of cases) {
      const fake = await fakeUpnp(handler, location);
      const c = new UpnpClient({ gateway: GW, ssdpPort: fake.ssdpPort, multicast: false, timeoutMs: 500 });
      await assert.rejects(c.discover(), portmapError(code, pattern), name);
      c.close();
      await fake.close();
    }
  });
});

test('hostile gateway (fake): SOAP faults, garbage and fuzzed replies end in typed errors', async () => {
  await noLeaks(async () => {
    let soap: (body: string) => [number, string] = () => [500, 'garbage'];
    const fake = await fakeUpnp((req, body, res) => {
      if (req.url === '/desc.xml') return res.end(descriptionXml('urn:schemas-upnp-org:service:WANIPConnection:2'));
      const [status, out] = soap(body);
      res.writeHead(status, { 'Content-Type': 'text/xml' });
      res.end(out);
    });
    const c = new UpnpClient({ gateway: GW, ssdpPort: fake.ssdpPort, multicast: false, timeoutMs: 500 });
    await assert.rejects(c.externalAddress(), portmapError('http', /HTTP status 500/));
    soap = () => [500, soapFault(718, 'ConflictInMappingEntry')];
    await assert.rejects(c.map(4000, 60, 'x'), (e) => portmapError('soap', /718/)(e) && (e as PortmapError).resultCode === 718);
    soap = () => [200, soapOk('AddAnyPortMapping', '<NewReservedPort>99999</NewReservedPort>')];
    await assert.rejects(c.map(4000, 60, 'x'), portmapError('malformed', /NewReservedPort/));
    soap = () => [200, soapOk('GetExternalIPAddress')];
    await assert.rejects(c.externalAddress(), portmapError('malformed', /lacks NewExternalIPAddress/));
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32);
    for (let i = 0; i < 40; i++) {
      const valid = soapOk('GetExternalIPAddress', '<NewExternalIPAddress>5.6.7.8</NewExternalIPAddress>');
      const chars = [...valid];
      for (let k = 0; k < 1 + rand() * 10; k++) chars[Math.floor(rand() * chars.length)] = String.fromCharCode(Math.floor(rand() * 128));
      soap = () => [rand() < 0.5 ? 200 : 500, chars.join('').slice(0, Math.floor(rand() * chars.length) + 1)];
      try {
        const ip = await c.externalAddress();
        assert.equal(typeof ip, 'string');
      } catch (e) {
        assert.ok(e instanceof PortmapError, `fuzz case ${i}: ${String(e)}`);
      }
    }
    c.close();
    await fake.close();
  });
});

test('hostile gateway (fake): quirks — permanent-only leases and a private "public" address are handled and flagged', async () => {
  await noLeaks(async () => {
    const fake = await fakeUpnp((req, body, res) => {
      if (req.url === '/desc.xml') return res.end(descriptionXml('urn:schemas-upnp-org:service:WANIPConnection:1'));
      const action = String(req.headers.soapaction).replace(/^.*#|"$/g, '');
      if (action === 'AddPortMapping' && !body.includes('<NewLeaseDuration>0</NewLeaseDuration>')) {
        res.writeHead(500);
        return res.end(soapFault(725, 'OnlyPermanentLeasesSupported'));
      }
      if (action === 'GetExternalIPAddress') return res.end(soapOk(action, '<NewExternalIPAddress>192.168.7.1</NewExternalIPAddress>'));
      res.end(soapOk(action));
    });
    const closedPort = await udpSocket();
    const deadPort = (closedPort.address() as AddressInfo).port;
    closedPort.close();
    const changes: unknown[] = [];
    const pm = new Portmapper({ localPort: 41641, gateway: GW, natpmpPort: deadPort, pcpPort: deadPort, ssdpPort: fake.ssdpPort, multicast: false, timeoutMs: 400, onChange: (m) => changes.push(m) });
    assert.deepEqual(await pm.probe(), { pcp: false, natpmp: false, upnp: true });
    const m = await pm.createMapping();
    assert.deepEqual(m, { protocol: 'upnp', external: { address: '192.168.7.1', port: 41641 }, internalPort: 41641, lifetimeSec: 0, suspect: true });
    assert.equal(changes.length, 1);
    await pm.close();
    assert.ok(fake.requests.some((r) => r.includes('#DeletePortMapping') && r.includes('<NewExternalPort>41641</NewExternalPort>')), 'mapping deleted on close');
    await fake.close();
  });
});

test('hostile gateway (fake): NAT-PMP gateway reporting 0.0.0.0 yields a flagged mapping; close() deletes it', async () => {
  await noLeaks(async () => {
    const seen: Buffer[] = [];
    const gw = await udpGateway((req) => {
      seen.push(Buffer.from(req));
      if (req[0] === 2) return Buffer.from('008100010000000000000000', 'hex'); // no PCP here
      if (req[1] === 0) return Buffer.from('008000000000000100000000', 'hex');
      return natpmpMapReply(req);
    });
    const pm = new Portmapper({ localPort: 41642, gateway: GW, natpmpPort: gw.port, pcpPort: gw.port, ssdpPort: gw.port, multicast: false, timeoutMs: 400, lifetimeSec: 60 });
    const m = await pm.createMapping();
    assert.equal(m.protocol, 'natpmp');
    assert.equal(m.external.address, '0.0.0.0');
    assert.equal(m.suspect, true);
    await pm.close();
    const del = seen.find((b) => b[0] === 0 && b[1] === 1 && b.readUInt32BE(8) === 0);
    assert.ok(del, 'a lifetime-0 delete was sent');
    assert.equal(del.readUInt16BE(4), 41642);
    await gw.close();
  });
});
