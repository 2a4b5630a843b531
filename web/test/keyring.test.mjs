// Unit tests of the widget's keyring verifier (run: node --test web/test/).
// The cases come from keyring/testdata/vectors.json, which the Go package
// keyring writes and checks, so both verifiers decide the same bytes alike.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseKeyring, parseSigner, sentence, SENTENCES, verifyKeyring } from '../src/keyring.js';

const here = dirname(fileURLToPath(import.meta.url));
const { vectors } = JSON.parse(readFileSync(join(here, '../../keyring/testdata/vectors.json'), 'utf8'));
const byName = Object.fromEntries(vectors.map((v) => [v.name, v]));
const good = byName.good;
const now = new Date(good.now);

/** @param {string} s */
const bytes = (s) => new TextEncoder().encode(s);

test('the shared vectors decide as the Go package does', async () => {
  assert.ok(vectors.length >= 20, 'vectors.json has the cases');
  for (const v of vectors) {
    const r = await verifyKeyring({ text: v.text, signer: v.signer, skin: v.skin, now: new Date(v.now), minSerial: v.minSerial });
    assert.equal(r.ok ? 'ok' : r.reason, v.want, v.name);
    if (r.ok) assert.deepEqual(r.keys, v.keys ?? [], v.name + ': keys');
    // Bytes and text give the same answer.
    const rb = await verifyKeyring({ text: bytes(v.text), signer: v.signer, skin: v.skin, now: new Date(v.now), minSerial: v.minSerial });
    assert.equal(rb.ok ? 'ok' : rb.reason, v.want, v.name + ' (bytes)');
  }
});

test('a good keyring verifies and gives its keys, serial and expiry', async () => {
  const r = await verifyKeyring({ text: good.text, signer: good.signer, skin: 'library', now });
  assert.equal(r.ok, true);
  assert.equal(r.serial, 1796709600n);
  assert.equal(r.notAfter.toISOString(), '2026-12-21T06:00:00.000Z');
  assert.deepEqual(r.keys, [
    { kind: 'otr', value: '1921C1B48AC86D702A3ADA33A2D7A86A1771FC70' },
    { kind: 'otr', value: '00112233445566778899AABBCCDDEEFF00112233' },
  ]);
  // The key parseSigner gives works as the signer too.
  const p = parseSigner(good.signer);
  assert.equal(p.ok, true);
  assert.equal((await verifyKeyring({ text: good.text, signer: p.key, skin: 'library', now })).ok, true);
});

test('each refusal has its own reason', async () => {
  const base = { text: good.text, signer: good.signer, skin: 'library', now };
  const cases = [
    ['expired', { ...base, now: new Date('2026-12-21T06:00:01Z') }, 'expired'],
    ['another skin', { ...base, skin: 'bank' }, 'other-skin'],
    ['tampered byte', { ...base, text: good.text.replace('1921C1B4', '1921C1B5') }, 'signature'],
    ['another signer', { ...base, signer: byName['signed by another signer'].signer.replace(/[A-Z]/, (c) => (c === 'A' ? 'B' : 'A')) }, 'signature'],
    ['lower serial', { ...base, minSerial: '1796709601' }, 'old-serial'],
    ['lower serial (bigint)', { ...base, minSerial: 1796709601n }, 'old-serial'],
    ['unreadable remembered serial', { ...base, minSerial: 'junk' }, 'old-serial'],
    ['unreadable signer', { ...base, signer: 'otrdesk-signer:nope' }, 'signature'],
    ['no signer', { ...base, signer: undefined }, 'signature'],
  ];
  for (const [name, args, want] of cases) {
    const r = await verifyKeyring(args);
    assert.equal(r.ok, false, name);
    assert.equal(r.reason, want, name);
    assert.match(sentence(r.reason), /^This chat's keys could not be verified/, name);
  }
  // Seen the same serial before: the same keyring loaded again is fine.
  assert.equal((await verifyKeyring({ ...base, minSerial: 1796709600 })).ok, true);
});

test('every reason has a sentence that never claims encryption', () => {
  for (const reason of ['malformed', 'signature', 'other-skin', 'expired', 'old-serial', 'made-up']) {
    const s = sentence(reason);
    assert.match(s, /^This chat's keys could not be verified/);
    assert.doesNotMatch(s, /uses end-to-end encryption/);
  }
  assert.equal(Object.keys(SENTENCES).length, 5);
  assert.equal(new Set(Object.values(SENTENCES)).size, 5, 'each reason says something different');
});

test('malformed input never throws', async () => {
  const inputs = [
    undefined, null, 0, 42, {}, [], '', '\n', 'otrdesk-keyring 1', good.text.slice(0, -1),
    good.text + 'x', good.text.replaceAll('\n', '\r\n'), '\ufeff' + good.text, good.text.replace('library', 'librärÿ'),
    new Uint8Array([0xef, 0xbb, 0xbf, ...bytes(good.text)]), new Uint8Array(70000), new ArrayBuffer(3),
    'x'.repeat(70000), good.text.replace('2026-12-21T06:00:00Z', '2026-02-30T06:00:00Z'),
    good.text.replace('2026-12-21T06:00:00Z', '0099-12-21T06:00:00Z'),
  ];
  // Every prefix and every one-byte change of a good keyring.
  for (let i = 0; i < good.text.length; i++) {
    inputs.push(good.text.slice(0, i));
    inputs.push(good.text.slice(0, i) + String.fromCharCode((good.text.charCodeAt(i) + 1) % 128) + good.text.slice(i + 1));
  }
  let verified = 0;
  for (const text of inputs) {
    const r = await verifyKeyring({ text, signer: good.signer, skin: 'library', now });
    assert.equal(typeof r.ok, 'boolean');
    if (r.ok) verified++;
    else assert.ok(r.reason in SENTENCES, String(r.reason));
    assert.doesNotThrow(() => parseKeyring(text));
  }
  assert.equal(verified, 0, 'no damaged keyring verifies');
  for (const attr of [undefined, null, 3, '', 'otrdesk-signer:', good.signer + '=', good.signer.slice(0, -2)]) {
    const p = parseSigner(attr);
    assert.equal(p.ok, false, String(attr));
  }
  assert.equal(parseSigner('  ' + good.signer + '\n').ok, true, 'spaces around the attribute are fine');
});

test('a year below 100 is not read as 19xx', () => {
  // Date.UTC maps 0-99 to 1900-1999; the parser must not.
  const text = good.text.replace('2026-12-21T06:00:00Z', '0099-12-21T06:00:00Z');
  const r = parseKeyring(text);
  assert.equal(r.ok, true);
  assert.equal(new Date(r.notAfter).getUTCFullYear(), 99);
});

// Benchmark (not a pass/fail check): the time to verify one keyring, the
// median of 20, and its size, for 1 and 3 keys. Printed for the closing note.
test('verification time, median of 20', async (t) => {
  for (const name of ['good with one key', 'good', 'good with three keys']) {
    const { text } = byName[name];
    const times = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await verifyKeyring({ text, signer: good.signer, skin: 'library', now });
      times.push(performance.now() - t0);
      assert.equal(r.ok, true);
    }
    times.sort((a, b) => a - b);
    t.diagnostic(`${name}: ${text.length} bytes, median ${((times[9] + times[10]) / 2).toFixed(3)} ms`);
  }
});
