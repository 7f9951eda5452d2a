import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  encodeFrame, FrameReader, FrameType, MAX_FRAME_SIZE, parseClientInfo, parseForwardPacket, parseKeyAndPacket,
  parsePeerGone, parsePing, parseServerChallenge, parseServerInfo, parseServerKey, encodeServerKey, CHALLENGE_LEN,
} from '../../src-main/derp/frames.js';
import { parseClientInfoJson, parseServerInfoJson } from '../../src-main/derp/client-info.js';
import { DerpProtocolError } from '../../src-main/derp/errors.js';

test('derp frames: reassembled from any split of the byte stream', () => {
  const key = new Uint8Array(randomBytes(32));
  const stream = Buffer.concat([encodeServerKey(key), encodeFrame(FrameType.SendPacket, key, Buffer.from('hello')), encodeFrame(FrameType.KeepAlive)]);
  for (let cut = 0; cut <= stream.length; cut++) {
    const r = new FrameReader();
    const frames = [...r.push(stream.subarray(0, cut)), ...r.push(stream.subarray(cut))];
    assert.equal(frames.length, 3);
    assert.deepEqual(parseServerKey(frames[0]), key);
    assert.equal(Buffer.from(parseKeyAndPacket(frames[1], 'send').packet).toString(), 'hello');
    assert.equal(frames[2].type, FrameType.KeepAlive);
  }
  const r = new FrameReader();
  for (const byte of stream) r.push(Uint8Array.of(byte));
});

test('derp frames: the server-key frame carries an optional connection challenge', () => {
  const key = new Uint8Array(randomBytes(32));
  const challenge = new Uint8Array(randomBytes(CHALLENGE_LEN));
  const [withIt] = new FrameReader().push(encodeServerKey(key, challenge));
  assert.deepEqual(parseServerKey(withIt), key);
  assert.deepEqual(parseServerChallenge(withIt), challenge);
  const [without] = new FrameReader().push(encodeServerKey(key));
  assert.equal(without.body.length, 40);
  assert.equal(parseServerChallenge(without), null);
  assert.deepEqual(parseClientInfoJson(Buffer.from('{"version":2,"challenge":"00ff","x":1}')), { version: 2, challenge: '00ff' });
  assert.throws(() => parseClientInfoJson(Buffer.from('{"challenge":7}')), DerpProtocolError);
  assert.throws(() => parseClientInfoJson(Buffer.from('{"challenge":"ZZ"}')), DerpProtocolError);
});

test('derp frames: a length above the maximum is rejected from the header alone', () => {
  const r = new FrameReader();
  const head = Buffer.alloc(5);
  head[0] = FrameType.SendPacket;
  head.writeUInt32BE(MAX_FRAME_SIZE + 1, 1);
  assert.throws(() => r.push(head), DerpProtocolError);
});

test('derp frames fuzz: random bytes and mutated frames only ever raise DerpProtocolError', () => {
  const parsers = [
    (f: Parameters<typeof parseServerKey>[0]) => parseServerKey(f),
    parseServerChallenge,
    parseClientInfo,
    parseServerInfo,
    (f: Parameters<typeof parseServerKey>[0]) => parseKeyAndPacket(f, 'x'),
    parseForwardPacket,
    parsePeerGone,
    (f: Parameters<typeof parseServerKey>[0]) => parsePing(f, 'x'),
    (f: Parameters<typeof parseServerKey>[0]) => parseClientInfoJson(f.body),
    (f: Parameters<typeof parseServerKey>[0]) => parseServerInfoJson(f.body),
  ];
  const seeds = [encodeServerKey(new Uint8Array(32)), encodeFrame(FrameType.SendPacket, new Uint8Array(40)), encodeFrame(FrameType.ClientInfo, Buffer.from('{"version":2}'))];
  for (let i = 0; i < 5000; i++) {
    let buf: Buffer;
    if (i % 2) buf = randomBytes(Math.floor(Math.random() * 200));
    else {
      buf = Buffer.from(seeds[i % seeds.length]);
      for (let j = 0; j < 4; j++) buf[Math.floor(Math.random() * buf.length)] = Math.floor(Math.random() * 256);
    }
    const r = new FrameReader(1024);
    let frames;
    try {
      frames = r.push(buf);
    } catch (err) {
      assert.ok(err instanceof DerpProtocolError);
      continue;
    }
    for (const f of frames) {
      for (const p of parsers) {
        try {
          p(f);
        } catch (err) {
          assert.ok(err instanceof DerpProtocolError, `${(err as Error).name}: ${(err as Error).message}`);
        }
      }
    }
  }
});
