// @ts-check
// Signed keyrings: the list of keys a chat's operators may use, signed
// offline by the site's admin. A page that pins the admin's public key
// (data-signer="otrdesk-signer:<base64>") trusts exactly the keys of a
// keyring that passes verifyKeyring, and nothing from one that does not.
//
// The served file /skins/<name>.keyring is ASCII text with LF line ends:
//
//   otrdesk-keyring 1
//   skin <skin name>
//   serial <decimal uint64, no leading zeros>
//   not-after <UTC time in whole seconds, e.g. 2026-12-21T06:00:00Z>
//   key <kind> <value>          zero or more: "otr" + 40 upper-case hex digits,
//                               "omemo" + lower-case hex, or a later kind (kept, not trusted by us)
//   signature <padded base64 of the 64-byte Ed25519 signature>
//
// The signature covers every byte before the "signature " line. Each field
// has one spelling, so the bytes are checked as they arrived: nothing is
// decoded and re-encoded first. The Go package keyring writes this format;
// keyring/testdata/vectors.json holds cases both sides must decide alike.
//
// Pure module: no DOM, no storage, no network. The signature is checked by
// WebCrypto's Ed25519 (Chromium, Node 20), never by JavaScript arithmetic.
// Nothing here throws: every failure is {ok: false, reason}.

export const SIGNER_PREFIX = 'otrdesk-signer:';

const MAX_SIZE = 64 * 1024;
const MAX_KEYS = 256;
const MAX_KIND = 32;
const MAX_VALUE = 512;
const MAX_SERIAL = (1n << 64n) - 1n;

/** @typedef {'malformed' | 'signature' | 'other-skin' | 'expired' | 'old-serial'} Reason */
/** @typedef {{kind: string, value: string}} Key */

/** The sentence a visitor reads for each reason a keyring is refused. */
export const SENTENCES = Object.freeze({
  malformed: "This chat's keys could not be verified: the signed list of keys is missing or damaged.",
  signature: "This chat's keys could not be verified: the list of keys is not signed by the key this page trusts.",
  'other-skin': "This chat's keys could not be verified: the list of keys was signed for another chat.",
  expired: "This chat's keys could not be verified: the list of keys has expired.",
  'old-serial': "This chat's keys could not be verified: the list of keys is older than one this browser has already seen.",
});

/**
 * The sentence for a refusal reason; an unknown reason gets the malformed one.
 * @param {string} reason
 * @returns {string}
 */
export function sentence(reason) {
  return Object.prototype.hasOwnProperty.call(SENTENCES, reason)
    ? SENTENCES[/** @type {Reason} */ (reason)]
    : SENTENCES.malformed;
}

/**
 * Decodes canonical padded base64 (the one spelling btoa gives back).
 * @param {string} s
 * @returns {Uint8Array | null}
 */
function base64Canonical(s) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  let bin;
  try {
    bin = atob(s);
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (btoa(bin) !== s) return null;
  return out;
}

/**
 * Reads a page's data-signer attribute.
 * @param {unknown} attr
 * @returns {{ok: true, key: Uint8Array} | {ok: false, reason: 'malformed'}}
 */
export function parseSigner(attr) {
  if (typeof attr !== 'string') return { ok: false, reason: 'malformed' };
  const s = attr.trim();
  if (!s.startsWith(SIGNER_PREFIX)) return { ok: false, reason: 'malformed' };
  const key = base64Canonical(s.slice(SIGNER_PREFIX.length));
  if (!key || key.length !== 32) return { ok: false, reason: 'malformed' };
  return { ok: true, key };
}

/** @param {string} s */
function canonicalUint(s) {
  return /^(0|[1-9][0-9]*)$/.test(s);
}

/** Skin names as otrdesk stores them. @param {string} s */
function validSkin(s) {
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(s) && !s.startsWith('guest-');
}

/** @param {string} kind @param {string} value */
function validKey(kind, value) {
  if (kind.length < 1 || kind.length > MAX_KIND || !/^[a-z][a-z0-9-]*$/.test(kind)) return false;
  if (value.length < 1 || value.length > MAX_VALUE) return false;
  if (kind === 'otr') return /^[0-9A-F]{40}$/.test(value);
  if (kind === 'omemo') return value.length % 2 === 0 && /^[0-9a-f]+$/.test(value);
  return /^[\x21-\x7e]+$/.test(value);
}

/**
 * Parses "YYYY-MM-DDTHH:MM:SSZ" with every field in range; milliseconds
 * since the epoch, or null.
 * @param {string} s
 */
function parseTime(s) {
  const m = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number);
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d); // not Date.UTC: it reads years 0-99 as 1900-1999
  t.setUTCHours(h, mi, se, 0);
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d ||
      t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== se) {
    return null;
  }
  return t.getTime();
}

/**
 * Turns what fetch gave (bytes or text) into the keyring's text, or null
 * when it cannot be a keyring (too long, or not ASCII). Pass the bytes
 * (response.arrayBuffer()) when you can: response.text() drops a leading
 * byte-order mark and replaces bad UTF-8, so it hides what was served.
 * @param {unknown} input
 * @returns {string | null}
 */
function asciiText(input) {
  /** @type {Uint8Array | null} */
  let bytes = null;
  if (input instanceof ArrayBuffer) bytes = new Uint8Array(input);
  else if (ArrayBuffer.isView(input)) bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (bytes) {
    if (bytes.length > MAX_SIZE) return null;
    let s = '';
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] > 0x7f) return null;
      s += String.fromCharCode(bytes[i]);
    }
    return s;
  }
  if (typeof input !== 'string' || input.length > MAX_SIZE || /[^\x00-\x7f]/.test(input)) return null;
  return input;
}

/**
 * Parses a signed keyring without checking its signature.
 * @param {unknown} input string, ArrayBuffer or Uint8Array
 * @returns {{ok: true, skin: string, serial: bigint, notAfter: number, keys: Key[], body: Uint8Array, signature: Uint8Array} | {ok: false, reason: 'malformed'}}
 */
export function parseKeyring(input) {
  const bad = /** @type {{ok: false, reason: 'malformed'}} */ ({ ok: false, reason: 'malformed' });
  const text = asciiText(input);
  if (text === null) return bad;
  const lines = text.split('\n');
  // Every line ends in LF, so the split ends with one empty piece.
  if (lines.length < 6 || lines[lines.length - 1] !== '') return bad;
  if (lines[0] !== 'otrdesk-keyring 1') return bad;
  /** @param {number} i @param {string} name */
  const field = (i, name) => (lines[i].startsWith(name + ' ') ? lines[i].slice(name.length + 1) : null);
  const skin = field(1, 'skin');
  if (skin === null || !validSkin(skin)) return bad;
  const serialText = field(2, 'serial');
  if (serialText === null || !canonicalUint(serialText) || serialText.length > 20) return bad;
  const serial = BigInt(serialText);
  if (serial > MAX_SERIAL) return bad;
  const naText = field(3, 'not-after');
  const notAfter = naText === null ? null : parseTime(naText);
  if (notAfter === null) return bad;
  /** @type {Key[]} */
  const keys = [];
  const seen = new Set();
  let i = 4;
  for (; i < lines.length && lines[i].startsWith('key '); i++) {
    const rest = lines[i].slice(4);
    const sp = rest.indexOf(' ');
    if (sp < 0) return bad;
    const kind = rest.slice(0, sp);
    const value = rest.slice(sp + 1);
    if (!validKey(kind, value) || seen.has(kind + ' ' + value) || keys.length === MAX_KEYS) return bad;
    seen.add(kind + ' ' + value);
    keys.push({ kind, value });
  }
  // The signature line, then only the empty piece after its LF.
  if (i !== lines.length - 2) return bad;
  const sigText = field(i, 'signature');
  if (sigText === null || sigText.length !== 88) return bad;
  const signature = base64Canonical(sigText);
  if (!signature || signature.length !== 64) return bad;
  const bodyText = lines.slice(0, i).join('\n') + '\n';
  const body = new Uint8Array(bodyText.length);
  for (let j = 0; j < bodyText.length; j++) body[j] = bodyText.charCodeAt(j);
  return { ok: true, skin, serial, notAfter, keys, body, signature };
}

/**
 * @param {unknown} v
 * @returns {bigint | null}
 */
function toSerial(v) {
  if (v === undefined || v === null || v === '') return 0n;
  if (typeof v === 'bigint') return v >= 0n ? v : null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
  if (typeof v === 'string' && canonicalUint(v)) return BigInt(v);
  return null;
}

/**
 * Verifies a keyring for a page: the signature with the pinned signer, then
 * the skin, the expiry and the serial, in that order. Only ok: true means
 * the keys may be trusted.
 *
 * @param {object} args
 * @param {unknown} args.text     what /skins/<name>.keyring served (bytes preferred, or text)
 * @param {unknown} args.signer   the data-signer attribute, or the key parseSigner returned
 * @param {string} args.skin      the page's data-skin
 * @param {Date | number} [args.now]        defaults to the current time
 * @param {bigint | number | string} [args.minSerial]  highest serial this browser saw for the skin (0 or absent: none)
 * @returns {Promise<{ok: true, serial: bigint, notAfter: Date, keys: Key[]} | {ok: false, reason: Reason}>}
 */
export async function verifyKeyring({ text, signer, skin, now, minSerial }) {
  try {
    const k = parseKeyring(text);
    if (!k.ok) return k;
    /** @type {Uint8Array | null} */
    let key = null;
    if (signer instanceof Uint8Array) key = signer.length === 32 ? signer : null;
    else {
      const p = parseSigner(signer);
      if (p.ok) key = p.key;
    }
    // A pin that cannot be read trusts nothing: no keyring can match it.
    if (!key) return { ok: false, reason: 'signature' };
    const pub = await crypto.subtle.importKey('raw', key, { name: 'Ed25519' }, false, ['verify']);
    if (!(await crypto.subtle.verify({ name: 'Ed25519' }, pub, k.signature, k.body))) {
      return { ok: false, reason: 'signature' };
    }
    if (k.skin !== skin) return { ok: false, reason: 'other-skin' };
    const t = now === undefined ? Date.now() : now instanceof Date ? now.getTime() : now;
    if (typeof t !== 'number' || !Number.isFinite(t) || t > k.notAfter) return { ok: false, reason: 'expired' };
    const min = toSerial(minSerial);
    // An unreadable remembered serial is treated as the highest possible:
    // refusing is safe, trusting an older keyring is not.
    if (min === null || k.serial < min) return { ok: false, reason: 'old-serial' };
    return { ok: true, serial: k.serial, notAfter: new Date(k.notAfter), keys: k.keys };
  } catch {
    // WebCrypto without Ed25519, or anything else unforeseen: not verified.
    return { ok: false, reason: 'signature' };
  }
}
