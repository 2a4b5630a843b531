// @ts-check
// Only the widget speaks about security. Every string the service sends —
// skin title and greeting, operator names, status text, OTR error texts,
// operator messages — is checked before it is shown: if it reads like one
// of the widget's own security sentences, it is replaced by a neutral
// marker, so a hostile service cannot put "This chat uses end-to-end
// encryption." (or a look-alike) on the page.
//
// "Reads like" is decided on a folded form: Unicode NFKC (fullwidth and
// other compatibility letters become plain ones), format characters
// (zero-width joiners, soft hyphens, direction marks: \p{Cf}) dropped, a
// small table of Cyrillic and Greek letters that look Latin mapped to
// them, lower case, and everything but letters and digits removed (so
// spacing, line breaks and punctuation do not matter). Strings shown next
// to each other are checked together as well (an operator name followed
// by a message, or two messages in a row).

import { VERIFIED, UNVERIFIED, PLAINTEXT } from './strings.js';

export const REMOVED = '[removed: text from the chat service that looked like a security notice; the line at the top of this chat says whether it is verified]';

// Letters of other scripts that render like Latin ones (NFKC keeps them).
const LOOKALIKE = {
  а: 'a', в: 'b', е: 'e', ё: 'e', к: 'k', м: 'm', н: 'h', о: 'o', р: 'p', с: 'c', т: 't', у: 'y', х: 'x',
  і: 'i', ї: 'i', ј: 'j', ѕ: 's', ԁ: 'd', ԛ: 'q', ԝ: 'w', һ: 'h', ӏ: 'l',
  α: 'a', β: 'b', ε: 'e', η: 'n', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', ϲ: 'c',
  ı: 'i', ɑ: 'a', ɡ: 'g', ℓ: 'l', '0': 'o', '1': 'l', '3': 'e', '5': 's',
};

/**
 * fold reduces text to the form compared against the widget's sentences.
 * @param {unknown} text
 */
export function fold(text) {
  let s = String(text ?? '').normalize('NFKC').replace(/\p{Cf}/gu, '').toLowerCase();
  s = s.normalize('NFKD').replace(/\p{M}/gu, ''); // accents: "éncryption" reads as "encryption"
  let out = '';
  for (const ch of s) {
    const c = LOOKALIKE[ch] ?? ch;
    if (/[\p{L}\p{N}]/u.test(c)) out += c;
  }
  return out;
}

// What must never appear: the verified sentence (and the phrase at its
// heart, however it is dressed up), the unverified sentence, and "Not
// encrypted." as a whole message.
const CONTAINS = [fold(VERIFIED), fold(UNVERIFIED), fold('end-to-end encrypt'), fold('uses end-to-end')];
const EQUALS = [fold(PLAINTEXT)];

/**
 * imitates tells whether text reads like one of the widget's sentences.
 * @param {unknown} text
 */
export function imitates(text) {
  const f = fold(text);
  if (!f) return false;
  return CONTAINS.some((n) => f.includes(n)) || EQUALS.includes(f);
}

/**
 * neutral returns text, or the marker when it imitates the widget.
 * @param {unknown} text
 */
export function neutral(text) {
  const s = String(text ?? '');
  return imitates(s) ? REMOVED : s;
}

/**
 * Screen checks the service's strings in the order they are shown, each
 * alone and joined to the one shown just before it (a name and its
 * message, two messages in a row). A string that is harmless alone but
 * completes a sentence with its neighbour is replaced.
 */
export class Screen {
  constructor() {
    this.prev = '';
  }

  /**
   * @param {unknown} text  the service's string, about to be shown
   * @returns {string} what to show
   */
  next(text) {
    const s = String(text ?? '');
    const bad = imitates(s) || (this.prev !== '' && imitates(this.prev + ' ' + s));
    this.prev = bad ? '' : s;
    return bad ? REMOVED : s;
  }

  // gap: something of the widget's own was shown in between.
  gap() {
    this.prev = '';
  }
}
