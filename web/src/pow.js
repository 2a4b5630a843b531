// @ts-check
// Proof of work for a new chat, as pure functions: no DOM, no network.
// The worker runs solve() (off the page's thread); chat.js asks Admission
// what to do with a challenge.
//
// When the chat service's rate of new chats is spent and proof of work is
// on, it answers a new visitor's first message with an error carrying a
// challenge instead of refusing it:
//
//	<error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
//	  <pow xmlns='urn:otrdesk:0' challenge='C' bits='B'/></error>
//
// C is 44 characters of base64url (opaque here), B a cost from 8 to 32. The
// widget finds a nonce N (a decimal counter) such that SHA-256 of the ASCII
// text C ":" N starts with at least B zero bits, and sends the same message
// again with <pow xmlns='urn:otrdesk:0' challenge='C' nonce='N'/> beside its
// body. About 2^B hashes: a fraction of a second for a visitor, a real cost
// for someone opening thousands of chats. A stamp that does not verify (too
// late, otrdesk restarted) is answered with a new challenge; the widget
// gives up after a few.
//
// SHA-256 is written out here for one 64-byte block: C ":" N is at most 44 +
// 1 + 10 bytes, and with B <= 32 only the first word of the digest matters,
// so each try is one compression and a count of leading zeros. WebCrypto's
// digest() costs a promise per hash, far too slow for this.

const CHALLENGE = /^[A-Za-z0-9_-]{44}$/;
// The highest cost the widget pays: 2^24 hashes, some 20 s in a browser.
// Nobody waits longer than that for a chat, and the service (which is not
// trusted) could otherwise keep the visitor's computer busy for hours. A
// costlier challenge is read as "try again later".
export const MAX_BITS = 24;
// How many challenges in a row the widget answers before it gives up.
export const MAX_ROUNDS = 3;

/**
 * The challenge in an error's <pow/> element, or null when it is not one
 * this widget answers.
 * @param {string|null} challenge @param {string|null} bits
 * @returns {{challenge: string, bits: number} | null}
 */
export function readChallenge(challenge, bits) {
  if (typeof challenge !== 'string' || !CHALLENGE.test(challenge)) return null;
  if (typeof bits !== 'string' || !/^[0-9]{1,2}$/.test(bits)) return null;
  const b = Number(bits);
  if (b < 1 || b > MAX_BITS) return null;
  return { challenge, bits: b };
}

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/**
 * The first 32 bits of SHA-256 of a message of at most 55 bytes, given
 * as its padded block's 16 big-endian words (w is overwritten).
 * @param {Uint32Array} w 64 words; the first 16 are the block
 */
function firstWord(w) {
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15];
    const y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const ch = (e & f) ^ (~e & g);
    const t1 = (h + S1 + ch + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = (S0 + maj) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  return (a + H[0]) >>> 0;
}

/**
 * Looks for a nonce among the decimal numbers [from, from + count).
 * Returns the nonce, or '' when none of them works (call again with the
 * next range: chunks keep a caller responsive).
 * @param {string} challenge @param {number} bits 1..32
 * @param {number} [from] @param {number} [count]
 */
export function solve(challenge, bits, from = 0, count = 2 ** 36) {
  const prefix = challenge + ':';
  const block = new Uint8Array(64);
  const w = new Uint32Array(64);
  for (let i = 0; i < prefix.length; i++) block[i] = prefix.charCodeAt(i) & 0xff;
  const end = Math.min(from + count, 1e10); // at most 10 digits: one block
  let digits = '';
  for (let n = from; n < end; n++) {
    digits = String(n);
    const len = prefix.length + digits.length;
    if (len > 55) return '';
    for (let i = 0; i < digits.length; i++) block[prefix.length + i] = digits.charCodeAt(i);
    block[len] = 0x80;
    block.fill(0, len + 1, 56);
    const bitsLen = len * 8;
    block[60] = bitsLen >>> 24;
    block[61] = bitsLen >>> 16;
    block[62] = bitsLen >>> 8;
    block[63] = bitsLen;
    block[56] = block[57] = block[58] = block[59] = 0;
    for (let i = 0; i < 16; i++) w[i] = (block[4 * i] << 24) | (block[4 * i + 1] << 16) | (block[4 * i + 2] << 8) | block[4 * i + 3];
    if (Math.clz32(firstWord(w)) >= bits) return digits;
  }
  return '';
}

/**
 * What the widget does with the challenges of one chat's start.
 */
export class Admission {
  constructor() {
    this.rounds = 0;
  }

  /**
   * A challenge arrived. Returns 'solve' (compute and send the same message
   * again with the stamp) or 'give-up' (too many in a row: tell the visitor
   * to try later).
   */
  challenged() {
    this.rounds++;
    return this.rounds > MAX_ROUNDS ? 'give-up' : 'solve';
  }

  /** The chat started (the service sent a status): a later chat starts over. */
  admitted() {
    this.rounds = 0;
  }
}
