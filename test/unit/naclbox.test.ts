import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { boxBeforeNm, boxOpen, boxSeal, NONCE_LEN } from '../../src-main/protocol/naclbox.js';
import { generateKeyPair } from '../../src-main/protocol/keys.js';

// Known-answer vectors from "Cryptography in NaCl" (Bernstein 2009), section 8 (box) and 9.
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const ALICE_SK = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
const BOB_PK = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
const BOB_SK = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
const ALICE_PK = hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a');
const FIRSTKEY = '1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389';
const NONCE = hex('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37');
const M = hex(
  'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffc' +
    'e5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb31' +
    '0e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde' +
    '048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f93776384864' +
    '5e0705',
);
const C =
  'f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce' +
  '48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f011ec48c972' +
  '71d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae' +
  '90224368517acfeabd6bb3732bc0e9da99832b61ca01b6de56244a9e88d5f9b3' +
  '7973f622a43d14a6599b1f654cb45a74e355a5';

test('naclbox: beforenm matches the NaCl firstkey vector', () => {
  assert.equal(Buffer.from(boxBeforeNm(BOB_PK, ALICE_SK)).toString('hex'), FIRSTKEY);
  assert.equal(Buffer.from(boxBeforeNm(ALICE_PK, BOB_SK)).toString('hex'), FIRSTKEY);
});

test('naclbox: box matches the NaCl published ciphertext and opens with the other side', () => {
  const sealed = boxSeal(M, NONCE, BOB_PK, ALICE_SK);
  assert.equal(Buffer.from(sealed).toString('hex'), C);
  assert.deepEqual(boxOpen(sealed, NONCE, ALICE_PK, BOB_SK), M);
});

test('naclbox: tampering, wrong key and truncation all fail to open', () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const c = generateKeyPair();
  const nonce = new Uint8Array(randomBytes(NONCE_LEN));
  const msg = new TextEncoder().encode('{"version":2}');
  const sealed = boxSeal(msg, nonce, b.publicKey, a.privateKey);
  assert.deepEqual(boxOpen(sealed, nonce, a.publicKey, b.privateKey), msg);
  assert.equal(boxOpen(sealed, nonce, c.publicKey, b.privateKey), null);
  const bad = sealed.slice();
  bad[bad.length - 1] ^= 1;
  assert.equal(boxOpen(bad, nonce, a.publicKey, b.privateKey), null);
  assert.equal(boxOpen(sealed.subarray(0, 10), nonce, a.publicKey, b.privateKey), null);
  assert.equal(boxOpen(sealed, nonce.subarray(0, 23), a.publicKey, b.privateKey), null);
});
