// Unit tests of the filter that keeps the service's strings from speaking
// for the widget (node --test).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fold, imitates, neutral, Screen, REMOVED } from '../src/speak.js';
import { VERIFIED, UNVERIFIED, PLAINTEXT } from '../src/strings.js';

const ZWJ = '\u200d';
const ZWSP = '\u200b';
const SHY = '\u00ad';
const fullwidth = (s) => [...s].map((c) => (c >= '!' && c <= '~' ? String.fromCodePoint(c.codePointAt(0) + 0xfee0) : c)).join('');

test('the sentences themselves are caught', () => {
  for (const s of [VERIFIED, UNVERIFIED, PLAINTEXT]) {
    assert.ok(imitates(s), s);
    assert.equal(neutral(s), REMOVED);
  }
});

test('look-alikes of the verified sentence are caught', () => {
  const cases = {
    'upper case': VERIFIED.toUpperCase(),
    'lower case': VERIFIED.toLowerCase(),
    'inside a message': 'Hi! ' + VERIFIED + ' How can I help?',
    'no full stop': VERIFIED.slice(0, -1),
    'fullwidth letters': fullwidth(VERIFIED),
    'zero-width joiners': [...VERIFIED].join(ZWJ),
    'zero-width spaces': VERIFIED.replace(/ /g, ZWSP),
    'soft hyphens': VERIFIED.replace(/e/g, 'e' + SHY),
    'direction marks': '\u200e' + VERIFIED + '\u200f',
    'line breaks and extra spaces': 'This  chat\nuses\tend-to-end\n\nencryption.',
    'non-breaking spaces': VERIFIED.replace(/ /g, '\u00a0'),
    'ideographic spaces': VERIFIED.replace(/ /g, '\u3000'),
    'Cyrillic homoglyphs': VERIFIED.replace(/a/g, 'а').replace(/e/g, 'е').replace(/o/g, 'о').replace(/c/g, 'с'),
    'Greek omicron': VERIFIED.replace(/o/g, 'ο'),
    'digits for letters': 'This chat uses end-t0-end encrypti0n.',
    'mathematical bold': 'This chat uses 𝐞𝐧𝐝-𝐭𝐨-𝐞𝐧𝐝 encryption.',
    'circled letters': 'ⓔⓝⓓ-ⓣⓞ-ⓔⓝⓓ ⓔⓝⓒⓡⓨⓟⓣⓘⓞⓝ',
    'accents': 'This chat uses énd-to-énd encryption.',
    'spelled differently': 'This chat is end to end encrypted',
    'a lock and a check mark': '🔒 ✓ This chat uses end-to-end encryption ✓',
  };
  for (const [name, s] of Object.entries(cases)) {
    assert.ok(imitates(s), name + ': ' + JSON.stringify(s) + ' folds to ' + fold(s));
  }
});

test('look-alikes of the other sentences are caught', () => {
  assert.ok(imitates(fullwidth(UNVERIFIED)));
  assert.ok(imitates(UNVERIFIED.toUpperCase().replace(/ /g, ZWSP + ' ')));
  assert.ok(imitates('NOT' + SHY + ' ENCRYPTED'));
  assert.ok(imitates(fullwidth('not encrypted')));
});

test('ordinary text passes unchanged', () => {
  for (const s of ['Hello! How can we help?', 'Your order 1234 ships tomorrow.', 'Is this chat encrypted?', 'Help desk shop', 'Ada', 'The email is not encrypted, so please use this chat.', '']) {
    assert.ok(!imitates(s), s);
    assert.equal(neutral(s), s);
  }
});

test('adjacent strings are checked together', () => {
  const sc = new Screen();
  assert.equal(sc.next('This chat uses'), 'This chat uses'); // an operator name
  assert.equal(sc.next('end-to-end encryption.'), REMOVED); // its message
  const sc2 = new Screen();
  assert.equal(sc2.next('Not'), 'Not');
  assert.equal(sc2.next('encrypted.'), REMOVED);
  const sc3 = new Screen();
  assert.equal(sc3.next('Ada'), 'Ada');
  assert.equal(sc3.next('Hello'), 'Hello');
  sc3.gap();
  assert.equal(sc3.next('end encryption'), 'end encryption');
  const sc4 = new Screen();
  sc4.next('This chat uses end-to-');
  assert.equal(sc4.next('end encryption'), REMOVED, 'one message continuing another');
  assert.ok(!imitates(REMOVED), 'the marker itself is harmless');
});
