import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bindingRequest, parseBindingResponse } from './stun-probe.js';

/** A Binding success response carrying XOR-MAPPED-ADDRESS (RFC 5389 §15.2) for 192.0.2.1:4242. */
function successResponse(txId: Buffer): Buffer {
  const msg = Buffer.alloc(32);
  msg.writeUInt16BE(0x0101, 0);
  msg.writeUInt16BE(12, 2);
  msg.writeUInt32BE(0x2112a442, 4);
  txId.copy(msg, 8);
  msg.writeUInt16BE(0x0020, 20);
  msg.writeUInt16BE(8, 22);
  msg[25] = 0x01;
  msg.writeUInt16BE(4242 ^ 0x2112, 26);
  msg.writeUInt32BE((0xc0000201 ^ 0x2112a442) >>> 0, 28);
  return msg;
}

test('stun-probe builds a Binding request and decodes XOR-MAPPED-ADDRESS', () => {
  const txId = randomBytes(12);
  const req = bindingRequest(txId);
  assert.equal(req.length, 20);
  assert.equal(req.readUInt16BE(0), 0x0001);
  assert.deepEqual(req.subarray(8), txId);
  assert.equal(parseBindingResponse(successResponse(txId), txId), '192.0.2.1:4242');
  assert.equal(parseBindingResponse(successResponse(txId), randomBytes(12)), undefined, 'other transaction');
});

test('stun-probe parser fuzz: random and mutated input never throws', () => {
  const txId = randomBytes(12);
  const valid = successResponse(txId);
  for (let i = 0; i < 20000; i++) {
    const msg = i % 2 ? randomBytes(Math.floor(Math.random() * 64)) : Buffer.from(valid);
    if (i % 2 === 0) {
      for (let k = 0; k < 3; k++) msg[Math.floor(Math.random() * msg.length)] = Math.floor(Math.random() * 256);
      const cut = Math.floor(Math.random() * (msg.length + 1));
      const r = parseBindingResponse(msg.subarray(0, cut), txId);
      assert.ok(r === undefined || /^\d+\.\d+\.\d+\.\d+:\d+$/.test(r));
    } else {
      assert.equal(typeof (parseBindingResponse(msg, txId) ?? ''), 'string');
    }
  }
});
