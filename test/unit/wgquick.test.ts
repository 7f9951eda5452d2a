import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPair, keyToBase64 } from '../../src-main/protocol/keys.js';
import { parseWgQuick, WgConfigError } from '../../src-main/wireguard/wgquick.js';

const a = generateKeyPair();
const b = generateKeyPair();
const c = generateKeyPair();
const psk = keyToBase64(generateKeyPair().privateKey);

const good = `# a comment
[Interface]
PrivateKey = ${keyToBase64(a.privateKey)}
Address = 10.0.0.1/24, fd00::1/64
Address = 10.0.1.1
ListenPort = 51820
MTU = 1420
DNS = 10.0.0.53
PostUp = iptables -A FORWARD -j ACCEPT

[Peer]
PublicKey = ${keyToBase64(b.publicKey)}
PresharedKey = ${psk}
AllowedIPs = 10.0.0.2/32, fd00::2/128
AllowedIPs = 192.168.5.0/24
Endpoint = 192.0.2.7:51820   # trailing comment
PersistentKeepalive = 25

[peer]
publickey = ${keyToBase64(c.publicKey)}
allowedips = 0.0.0.0/0
endpoint = [2001:db8::1]:443
`;

function errLine(text: string): { line: number; message: string } {
  try {
    parseWgQuick(text);
  } catch (err) {
    assert.ok(err instanceof WgConfigError, `expected WgConfigError, got ${String(err)}`);
    return { line: err.line, message: err.message };
  }
  assert.fail('config was accepted');
}

describe('wg-quick config parser', () => {
  it('parses a full config with lists, comments, case-insensitive keys and ignored keys', () => {
    const cfg = parseWgQuick(good);
    assert.deepEqual(cfg.privateKey, a.privateKey);
    assert.deepEqual(cfg.addresses, ['10.0.0.1/24', 'fd00::1/64', '10.0.1.1/32']);
    assert.equal(cfg.listenPort, 51820);
    assert.equal(cfg.mtu, 1420);
    assert.deepEqual(cfg.dns, ['10.0.0.53']);
    assert.equal(cfg.peers.length, 2);
    const [p1, p2] = cfg.peers;
    assert.deepEqual(p1.publicKey, b.publicKey);
    assert.equal(keyToBase64(p1.presharedKey!), psk);
    assert.deepEqual(p1.allowedIps, ['10.0.0.2/32', 'fd00::2/128', '192.168.5.0/24']);
    assert.equal(p1.endpoint, '192.0.2.7:51820');
    assert.equal(p1.persistentKeepalive, 25);
    assert.deepEqual(p2.publicKey, c.publicKey);
    assert.equal(p2.presharedKey, undefined);
    assert.equal(p2.endpoint, '[2001:db8::1]:443');
    assert.ok(cfg.warnings.some((w) => /line 8: DNS is ignored/.test(w)));
    assert.ok(cfg.warnings.some((w) => /line 9: PostUp is not supported/.test(w)));
  });

  it('names the line and the problem for bad configs', () => {
    const base = good.split('\n');
    const at = (line: number, text: string) => {
      const copy = [...base];
      copy[line - 1] = text;
      return copy.join('\n');
    };
    const cases: Array<[string, number, RegExp]> = [
      [at(3, 'PrivateKey = abc'), 3, /PrivateKey: expected a base64 WireGuard key/],
      [at(4, 'Address = 10.0.0.1/33'), 4, /bad prefix length/],
      [at(4, 'Address = 10.0.0.300/24'), 4, /not an IP address/],
      [at(6, 'ListenPort = 70000'), 6, /ListenPort must be an integer in 0\.\.65535/],
      [at(7, 'MTU = 10'), 7, /MTU must be/],
      [at(7, 'Mtu 1420'), 7, /expected "Key = Value"/],
      [at(7, 'Colour = blue'), 7, /unknown \[Interface\] key "Colour"/],
      [at(16, 'Endpoint = 192.0.2.7'), 16, /Endpoint must be "host:port"/],
      [at(16, 'Endpoint = [zz::1]:5'), 16, /Endpoint must be/],
      [at(17, 'PersistentKeepalive = -1'), 17, /PersistentKeepalive must be/],
      [at(17, 'Endpoint = 192.0.2.8:1'), 17, /Endpoint given twice/],
      [at(19, '[Peers]'), 19, /unknown section \[Peers\]/],
      [at(20, 'allowedips = 10.0.0.0/8'), 19, /\[Peer\] has no PublicKey/],
      [at(12, 'PublicKey = ' + keyToBase64(c.publicKey)), 19, /appears twice/],
      [`PrivateKey = ${keyToBase64(a.privateKey)}\n`, 1, /outside of an \[Interface\] or \[Peer\] section/],
      ['[Interface]\nAddress = 10.0.0.1/24\n', 0, /no PrivateKey/],
      ['[Interface]\n[Interface]\n', 2, /a second \[Interface\]/],
      ['', 0, /no \[Interface\] section/],
    ];
    for (const [text, line, re] of cases) {
      const e = errLine(text);
      assert.equal(e.line, line, `${re}: line of "${e.message}"`);
      assert.match(e.message, re);
      if (line > 0) assert.match(e.message, new RegExp(`^line ${line}: `));
    }
  });

  it('never throws anything but WgConfigError on random input (fuzz)', () => {
    const alphabet = ['[Interface]', '[Peer]', 'PrivateKey', 'PublicKey', 'AllowedIPs', 'Endpoint', 'MTU', '=', ',', '/', ':', '#', '\n', ' ', '10.0.0.1', '::1', '[', ']', '999999', keyToBase64(a.privateKey), 'x'];
    let seed = 0x1234;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 3000; i++) {
      let s = '';
      for (let j = rand(40); j > 0; j--) s += alphabet[rand(alphabet.length)];
      try {
        parseWgQuick(s);
      } catch (err) {
        assert.ok(err instanceof WgConfigError, `input ${JSON.stringify(s)} threw ${String(err)}`);
      }
    }
  });
});
