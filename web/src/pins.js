// @ts-check
// Fingerprints as the widget handles them, and the page's pins.
//
// One text form inside the widget per kind of key: an OTR fingerprint is 40
// upper-case hex digits, an OMEMO identity key is 64 lower-case hex digits
// (the key itself, as the signed keyring holds it). Grouping into blocks of
// eight is only for showing a key to a person: five for OTR, like Pidgin;
// eight for OMEMO, like Gajim, Conversations and Dino.
//
// A page pins the operator keys it trusts with data-fingerprint on the
// script tag. A pin is the page speaking, so it fails closed: an attribute
// that is present but holds no valid fingerprint, or any item that is not
// one, trusts nothing (the widget then says the page is misconfigured); it
// never falls back to the list the service publishes.

const HEX40 = /^[0-9A-F]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

// canonFP returns s as 40 upper-case hex digits when it is a fingerprint in
// one of the forms people paste (groups separated by spaces, 40 hex digits
// in either case, pairs or groups joined by ':'), else ''.
export function canonFP(s) {
  const t = String(s ?? '').replace(/[\s:]/g, '').toUpperCase();
  return HEX40.test(t) ? t : '';
}

// canonOMEMO returns s as 64 lower-case hex digits when it is an OMEMO
// identity key fingerprint in a form the clients show or people paste
// (eight groups of eight, any case, spaces or ':' between), else ''.
export function canonOMEMO(s) {
  const t = String(s ?? '').replace(/[\s:]/g, '').toLowerCase();
  return HEX64.test(t) ? t : '';
}

// canonKey returns s in its kind's canonical form (canonFP or canonOMEMO),
// else ''.
export function canonKey(s) {
  return canonFP(s) || canonOMEMO(s);
}

// isOMEMO tells an OMEMO key (canonical form) from an OTR fingerprint.
export function isOMEMO(k) {
  return HEX64.test(k);
}

// humanFP shows a fingerprint as groups of eight: five for OTR, like
// Pidgin; eight for an OMEMO key, like the OMEMO clients.
export function humanFP(s) {
  const c = canonKey(s);
  return c ? c.replace(/(.{8})(?!$)/g, '$1 ') : '';
}

/**
 * parsePins reads the data-fingerprint attribute (null or undefined when the
 * page does not set it). Items are separated by commas; empty items (a
 * trailing comma) are skipped. An item is an OTR fingerprint or an OMEMO
 * identity key (its length tells which); both kinds may be pinned at once.
 * @param {string|null|undefined} attr
 * @returns {{present: boolean, ok: boolean, fingerprints: string[]}}
 */
export function parsePins(attr) {
  if (attr === null || attr === undefined) return { present: false, ok: true, fingerprints: [] };
  const fps = [];
  for (const item of String(attr).split(',')) {
    if (!item.trim()) continue;
    const fp = canonKey(item);
    if (!fp) return { present: true, ok: false, fingerprints: [] };
    if (!fps.includes(fp)) fps.push(fp);
  }
  return { present: true, ok: fps.length > 0, fingerprints: fps };
}
