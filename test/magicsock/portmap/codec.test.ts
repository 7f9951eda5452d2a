// Wire formats of NAT-PMP (RFC 6886), PCP (RFC 6887) and the UPnP/SSDP/XML helpers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIPv6, parseIPv6, encodeAddress16, decodeAddress16 } from '../../../src-main/magicsock/ip6.js';
import { isBogusExternalIPv4, isUnusableIPv4 } from '../../../src-main/magicsock/portmap/addr.js';
import { PortmapError } from '../../../src-main/magicsock/portmap/errors.js';
import { parseProcNetRoute } from '../../../src-main/magicsock/portmap/gateway.js';
import * as natpmp from '../../../src-main/magicsock/portmap/natpmp.js';
import * as pcp from '../../../src-main/magicsock/portmap/pcp.js';
import { encodeSoapRequest, parseDeviceDescription, parseSoapResponse, parseSsdpResponse, WANIP1, WANIP2 } from '../../../src-main/magicsock/portmap/upnp.js';
import { elements, text } from '../../../src-main/magicsock/portmap/xml.js';

const isPortmapError = (code: string, resultCode?: number) => (e: unknown) =>
  e instanceof PortmapError && e.code === code && (resultCode === undefined || e.resultCode === resultCode);

test('NAT-PMP: requests are laid out as RFC 6886 §3.2/§3.3 say', () => {
  assert.deepEqual([...natpmp.encodeExternalAddressRequest()], [0, 0]);
  const req = natpmp.encodeMapRequest(0x1234, 0x5678, 7200);
  assert.equal(req.toString('hex'), '0001' + '0000' + '1234' + '5678' + '00001c20');
});

test('NAT-PMP: responses parse; result codes, truncation and wrong version/opcode are typed errors', () => {
  const ext = Buffer.from('0080000000000e10c0000221', 'hex');
  assert.deepEqual(natpmp.parseExternalAddressResponse(ext), { epoch: 3600, address: '192.0.2.33' });
  const map = Buffer.from('00810000000000640fa01f400000003c', 'hex');
  assert.deepEqual(natpmp.parseMapResponse(map), { epoch: 100, internalPort: 4000, externalPort: 8000, lifetimeSec: 60 });
  assert.throws(() => natpmp.parseMapResponse(Buffer.from('00810002000000640fa01f400000003c', 'hex')), isPortmapError('result', 2));
  assert.throws(() => natpmp.parseMapResponse(map.subarray(0, 15)), isPortmapError('malformed'));
  assert.throws(() => natpmp.parseMapResponse(Buffer.from('0181', 'hex')), isPortmapError('malformed'));
  assert.throws(() => natpmp.parseExternalAddressResponse(map), isPortmapError('malformed'));
});

test('NAT-PMP: epoch going backwards means the gateway lost its mappings (RFC 6886 §3.6)', () => {
  assert.equal(natpmp.epochWentBackwards(1000, 0, 1100, 100_000), false);
  assert.equal(natpmp.epochWentBackwards(1000, 0, 5, 100_000), true);
  assert.equal(natpmp.epochWentBackwards(1000, 0, 1050, 100_000), true, 'advanced far less than 7/8 of 100 s');
});

test('PCP: MAP request layout (RFC 6887 §7.1, §11.1) with IPv4-mapped addresses', () => {
  const nonce = Buffer.from('0102030405060708090a0b0c', 'hex');
  const req = pcp.encodeMapRequest({ clientAddress: '10.0.0.2', nonce, internalPort: 41641, suggestedExternalPort: 41641, suggestedExternalAddress: '0.0.0.0', lifetimeSec: 7200 });
  assert.equal(req.length, 60);
  assert.equal(req.subarray(0, 8).toString('hex'), '0201000000001c20');
  assert.equal(req.subarray(8, 24).toString('hex'), '00000000000000000000ffff0a000002');
  assert.ok(req.subarray(24, 36).equals(nonce));
  assert.equal(req[36], 17);
  assert.equal(req.readUInt16BE(40), 41641);
  assert.equal(req.readUInt16BE(42), 41641);
  assert.equal(req.subarray(44, 60).toString('hex'), '00000000000000000000ffff00000000');
  assert.equal(pcp.encodeAnnounceRequest('10.0.0.2').subarray(0, 4).toString('hex'), '02000000');
});

function pcpMapResponse(result: number, nonce: Buffer): Buffer {
  const b = Buffer.alloc(60);
  b[0] = 2;
  b[1] = 0x81;
  b[3] = result;
  b.writeUInt32BE(120, 4);
  b.writeUInt32BE(99, 8);
  nonce.copy(b, 24);
  b[36] = 17;
  b.writeUInt16BE(5000, 40);
  b.writeUInt16BE(6000, 42);
  encodeAddress16('198.51.100.7').copy(b, 44);
  return b;
}

test('PCP: responses parse; bad length, R bit, version and result codes are typed errors', () => {
  const nonce = Buffer.alloc(12, 7);
  const r = pcp.parseMapResponse(pcpMapResponse(0, nonce));
  assert.equal(r.externalAddress, '198.51.100.7');
  assert.equal(r.externalPort, 6000);
  assert.equal(r.internalPort, 5000);
  assert.equal(r.lifetimeSec, 120);
  assert.equal(r.epoch, 99);
  assert.ok(r.nonce.equals(nonce));
  assert.throws(() => pcp.parseMapResponse(pcpMapResponse(8, nonce)), isPortmapError('result', pcp.PcpResult.NO_RESOURCES));
  assert.throws(() => pcp.parseMapResponse(pcpMapResponse(0, nonce).subarray(0, 58)), isPortmapError('malformed'));
  assert.throws(() => pcp.parseMapResponse(pcpMapResponse(0, nonce).subarray(0, 56)), isPortmapError('malformed'));
  const noR = pcpMapResponse(0, nonce);
  noR[1] = 1;
  assert.throws(() => pcp.parseMapResponse(noR), isPortmapError('malformed'));
  // A NAT-PMP-only gateway answers a PCP request with version 0, result 1 (RFC 6887 §9).
  assert.throws(() => pcp.parseResponseHeader(Buffer.from('008100010000000000000000', 'hex'), pcp.OP_MAP), isPortmapError('result', 1));
});

test('IPv6 text conversions follow RFC 4291 §2.2 input and RFC 5952 output', () => {
  const cases: Array<[string, string]> = [
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1::', '1::'],
  ];
  for (const [input, want] of cases) assert.equal(formatIPv6(parseIPv6(input)), want, input);
  assert.equal(decodeAddress16(encodeAddress16('203.0.113.9')), '203.0.113.9');
  assert.equal(decodeAddress16(encodeAddress16('2001:db8::5')), '2001:db8::5');
  assert.throws(() => parseIPv6('1.2.3.4'), TypeError);
});

test('bogus external addresses are flagged; only unusable ones are dropped', () => {
  for (const ip of ['0.0.0.0', '10.1.2.3', '192.168.1.1', '172.16.0.1', '100.64.0.1', '127.0.0.1', '169.254.1.1', '224.0.0.1', 'nonsense']) {
    assert.equal(isBogusExternalIPv4(ip), true, ip);
  }
  for (const ip of ['5.77.0.1', '198.51.100.1', '172.32.0.1', '100.128.0.1']) assert.equal(isBogusExternalIPv4(ip), false, ip);
  // Private and CGNAT-space mappings stay usable for peers behind the same outer NAT.
  for (const ip of ['0.0.0.0', '127.0.0.1', '169.254.1.1', '224.0.0.1', '255.255.255.255', 'nonsense']) assert.equal(isUnusableIPv4(ip), true, ip);
  for (const ip of ['10.1.2.3', '100.64.0.1', '192.168.1.1', '5.77.0.1']) assert.equal(isUnusableIPv4(ip), false, ip);
});

test('default gateway from /proc/net/route: lowest-metric default route', () => {
  const table = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth1\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0',
    'eth0\t00000000\t01014D0A\t0003\t0\t0\t100\t00000000\t0\t0\t0',
    'eth0\t00014D0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  ].join('\n');
  assert.equal(parseProcNetRoute(table), '10.77.1.1');
  assert.equal(parseProcNetRoute(table.split('\n').slice(0, 1).join('\n')), undefined);
  assert.equal(parseProcNetRoute('garbage'), undefined);
});

test('SSDP: LOCATION from a 200 reply only', () => {
  const ok = Buffer.from('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nlocation:  http://10.0.0.1:5000/rootDesc.xml \r\nST: x\r\n\r\n');
  assert.equal(parseSsdpResponse(ok), 'http://10.0.0.1:5000/rootDesc.xml');
  assert.equal(parseSsdpResponse(Buffer.from('NOTIFY * HTTP/1.1\r\nLOCATION: http://x/\r\n\r\n')), undefined);
  assert.equal(parseSsdpResponse(Buffer.alloc(5000, 65)), undefined);
});

const DESC = `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceList><device><deviceList><device>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/v1</controlURL></service>
<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn</controlURL></service>
</serviceList></device></deviceList></device></deviceList></device></root>`;

test('device description: WANIPConnection:2 preferred, control URL resolved against LOCATION or URLBase', () => {
  const loc = new URL('http://10.0.0.1:5000/rootDesc.xml');
  const s = parseDeviceDescription(DESC, loc);
  assert.equal(s.serviceType, WANIP2);
  assert.equal(s.controlUrl.href, 'http://10.0.0.1:5000/ctl/IPConn');
  const v1 = parseDeviceDescription(DESC.replace(/WANIPConnection:2/, 'Other:1').replace('<root', '<root><URLBase>http://10.0.0.1:6000/</URLBase'), loc);
  assert.equal(v1.serviceType, WANIP1);
  assert.equal(v1.controlUrl.href, 'http://10.0.0.1:6000/ctl/v1');
  assert.throws(() => parseDeviceDescription('<root/>', loc), isPortmapError('malformed'));
  assert.throws(() => parseDeviceDescription('<!DOCTYPE r [<!ENTITY a "aaaa">]><root>&a;</root>', loc), isPortmapError('malformed'));
});

test('SOAP: request envelope escapes arguments; replies and UPnPError faults parse', () => {
  const body = encodeSoapRequest(WANIP2, 'AddAnyPortMapping', { NewPortMappingDescription: 'a<b&"c"', NewExternalPort: 5 });
  assert.match(body, /<u:AddAnyPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:2">/);
  assert.match(body, /<NewPortMappingDescription>a&lt;b&amp;&quot;c&quot;<\/NewPortMappingDescription><NewExternalPort>5<\/NewExternalPort>/);
  const ok = '<s:Envelope><s:Body><u:GetExternalIPAddressResponse xmlns:u="x"><NewExternalIPAddress>5.6.7.8</NewExternalIPAddress></u:GetExternalIPAddressResponse></s:Body></s:Envelope>';
  assert.equal(text(parseSoapResponse(200, ok, 'GetExternalIPAddress'), 'NewExternalIPAddress'), '5.6.7.8');
  const fault = '<s:Envelope><s:Body><s:Fault><detail><UPnPError><errorCode>725</errorCode><errorDescription>OnlyPermanentLeasesSupported</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>';
  assert.throws(() => parseSoapResponse(500, fault, 'AddPortMapping'), isPortmapError('soap', 725));
  assert.throws(() => parseSoapResponse(404, '', 'AddPortMapping'), isPortmapError('http'));
  assert.throws(() => parseSoapResponse(200, '<x/>', 'AddPortMapping'), isPortmapError('malformed'));
});

test('XML extraction: prefixes, self-closing, entities, unclosed elements', () => {
  assert.deepEqual(elements('<a:x>1</a:x><x/><x >2</x>', 'x'), ['1', '', '2']);
  assert.equal(text('<x> a &amp;&lt;&#65;&#x42;&bogus; </x>', 'x'), 'a &<AB&bogus;');
  assert.deepEqual(elements('<x>never closed', 'x'), []);
  assert.deepEqual(elements('<xy>1</xy>', 'x'), []);
});
