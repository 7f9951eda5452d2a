import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatWgStatus } from '../../src-main/cli/wg-status.js';
import { parseTestTimers } from '../../src-main/cli/commands/wg.js';

describe('pierce wg show formatting', () => {
  it('renders interface and peers like `wg show`', () => {
    const now = 1_700_000_000_000;
    const text = formatWgStatus(
      {
        interface: 'wg0',
        publicKey: 'PUB',
        listenPort: 51820,
        aead: 'node',
        peers: [
          { publicKey: 'P1', endpoint: '192.0.2.1:51820', lastHandshakeMs: now - 65_000, rxBytes: 2048, txBytes: 5 * 1024 * 1024, allowedIps: ['10.0.0.2/32', 'fd00::2/128'], persistentKeepalive: 25 },
          { publicKey: 'P2', rxBytes: 0, txBytes: 0, allowedIps: [] },
        ],
      },
      now,
    );
    assert.equal(
      text,
      [
        'interface: wg0',
        '  public key: PUB',
        '  listening port: 51820',
        '  cipher backend: node',
        '',
        'peer: P1',
        '  endpoint: 192.0.2.1:51820',
        '  allowed ips: 10.0.0.2/32, fd00::2/128',
        '  latest handshake: 1 minute, 5 seconds ago',
        '  transfer: 2.00 KiB received, 5.00 MiB sent',
        '  persistent keepalive: every 25 seconds',
        '',
        'peer: P2',
        '  allowed ips: (none)',
        '',
      ].join('\n'),
    );
  });

  it('parses the test-only timer overrides and rejects unknown or bad ones', () => {
    assert.deepEqual(parseTestTimers('rekeyAfterTimeMs=1500, rekeyTimeoutMs=1000'), { rekeyAfterTimeMs: 1500, rekeyTimeoutMs: 1000 });
    assert.throws(() => parseTestTimers('rekeyAfterTime=3'), /unknown timer "rekeyAfterTime"/);
    assert.throws(() => parseTestTimers('rekeyAfterTimeMs=-1'), /must be a positive number/);
  });
});
