// Unit tests of the proof-of-work stamp (node --test): the hash against
// node's SHA-256, the stamp the component checks, and when the widget gives up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { solve, readChallenge, Admission, MAX_ROUNDS, MAX_BITS } from '../src/pow.js';

const zeros = (buf) => {
  let n = 0;
  for (const b of buf) {
    if (b !== 0) return n + Math.clz32(b) - 24;
    n += 8;
  }
  return n;
};
const stamp = (c, n) => createHash('sha256').update(c + ':' + n).digest();
const challenge = () => randomBytes(33).toString('base64url'); // 44 characters, like the component's

test('a stamp has the zero bits asked for, as node (and the component) hash it', () => {
  for (const bits of [1, 8, 12, 16]) {
    const c = challenge();
    const n = solve(c, bits);
    assert.match(n, /^[0-9]{1,10}$/);
    assert.ok(zeros(stamp(c, n)) >= bits, `bits ${bits}: ${zeros(stamp(c, n))}`);
    // and it is the first such nonce: the search skips none
    for (let i = 0; i < Number(n); i++) assert.ok(zeros(stamp(c, i)) < bits, `nonce ${i} already had ${bits} bits`);
  }
});

test('the hash is SHA-256 for every length a stamp can have', () => {
  // With 32 bits asked, a nonce works only if the first word is 0; compare
  // the first word for many nonces of every digit count instead.
  const c = challenge();
  for (const from of [0, 9, 99, 999_999, 9_999_999_990, 1_234_567_890]) {
    for (let n = from; n < from + 3 && n < 1e10; n++) {
      const want = zeros(stamp(c, n));
      // solve over one nonce with exactly the zeros it has succeeds, with one more fails
      if (want < 32) {
        assert.equal(solve(c, want, n, 1), String(n), `n=${n}`);
        assert.equal(solve(c, want + 1, n, 1), '', `n=${n}`);
      }
    }
  }
});

test('a chunk without a nonce says so, and the next chunk goes on', () => {
  const c = challenge();
  const n = Number(solve(c, 12));
  if (n > 0) assert.equal(solve(c, 12, 0, n), '');
  assert.equal(solve(c, 12, n, 1), String(n));
});

test('challenges: 44 characters of base64url and a cost the widget pays', () => {
  const c = challenge();
  assert.deepEqual(readChallenge(c, '18'), { challenge: c, bits: 18 });
  assert.deepEqual(readChallenge(c, String(MAX_BITS)), { challenge: c, bits: MAX_BITS });
  assert.equal(readChallenge(c, String(MAX_BITS + 1)), null, 'a service asking for hours of work is not obeyed');
  for (const [cc, b] of [
    [c.slice(1), '18'],
    [c + 'A', '18'],
    [c.slice(0, 43) + '+', '18'],
    [c, '33'],
    [c, '0'],
    [c, '-1'],
    [c, '1e1'],
    [c, ''],
    [null, '18'],
    [c, null],
  ]) assert.equal(readChallenge(cc, b), null, `${cc} ${b}`);
});

test('the widget gives up after a few challenges in a row, and starts over once admitted', () => {
  const a = new Admission();
  for (let i = 0; i < MAX_ROUNDS; i++) assert.equal(a.challenged(), 'solve');
  assert.equal(a.challenged(), 'give-up');
  a.admitted();
  assert.equal(a.challenged(), 'solve');
});

test('speed: hashes per second at 18 bits (the default cost)', () => {
  const t0 = performance.now();
  let tries = 0;
  for (let i = 0; i < 3; i++) tries += Number(solve(challenge(), 18)) + 1;
  const s = (performance.now() - t0) / 1000;
  console.log(`# proof of work: ${tries} hashes in ${s.toFixed(2)} s: ${Math.round(tries / s)} per second`);
});
