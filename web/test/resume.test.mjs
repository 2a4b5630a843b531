// Unit tests of taking a chat back after a new login (node --test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Resume, validSecret } from '../src/resume.js';

const S1 = 'AbCdEfGhIjKlMnOpQrStUvWx'; // 24 characters, as the service makes them
const S2 = 'zyxwvutsrqponmlkjihgfe_-';

test('secrets: base64url, 128 bits or more, nothing else', () => {
  for (const [s, ok] of [
    [S1, true],
    ['A'.repeat(22), true],
    ['A'.repeat(21), false],
    ['A'.repeat(65), false],
    ['AbCdEfGhIjKlMnOpQrStUv+/', false],
    ['AbCdEfGhIjKlMnOpQrStUvWx=', false],
    ['', false],
    [null, false],
    [42, false],
  ]) assert.equal(validSecret(s), ok, String(s));
});

test('the latest secret is kept and presented after a new login', () => {
  const r = new Resume();
  assert.equal(r.offered(null), false);
  assert.equal(r.offered('not a secret'), false);
  assert.equal(r.offered(S1), true);
  assert.equal(r.offered(S1), false, 'the same one again: nothing to save');
  assert.equal(r.login({ started: true, ended: false }), S1);
  assert.equal(r.answer('status'), 'resumed');
  assert.equal(r.answer('status'), '', 'only the first answer counts');
  assert.equal(r.offered(S2), true, 'each secret works once: the answer carries the next');
  assert.equal(r.login({ started: true, ended: false }), S2);
});

test('a refused secret is forgotten: the chat goes on as a new one', () => {
  const r = new Resume(S1);
  assert.equal(r.login({ started: true, ended: false }), S1);
  assert.equal(r.answer('error'), 'refused');
  assert.equal(r.secret, '');
  assert.equal(r.login({ started: true, ended: false }), '');
});

test('nothing is presented without a started chat, after its end, or with a bad kept secret', () => {
  assert.equal(new Resume(S1).login({ started: false, ended: false }), '');
  assert.equal(new Resume(S1).login({ started: true, ended: true }), '');
  assert.equal(new Resume('broken').login({ started: true, ended: false }), '');
  const r = new Resume(S1);
  r.end();
  assert.equal(r.login({ started: true, ended: false }), '');
  assert.equal(r.answer('error'), '', 'no request out: an error is not an answer to one');
});

test('a request the server bounced (the service was away) is made again, with the same secret', () => {
  const r = new Resume(S1);
  assert.equal(r.login({ started: true, ended: false }), S1);
  assert.equal(r.answer('away'), 'retry');
  assert.equal(r.secret, S1, 'the service never saw it');
  assert.equal(r.login({ started: true, ended: false }), S1);
  assert.equal(r.answer('status'), 'resumed');
});
