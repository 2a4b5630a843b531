// @ts-check
// Fingerprints as the widget handles them, and the page's pins.
//
// One text form inside the widget: 40 upper-case hex digits. Grouping into
// five blocks of eight is only for showing a key to a person.
//
// A page pins the operator keys it trusts with data-fingerprint on the
// script tag. A pin is the page speaking, so it fails closed: an attribute
// that is present but holds no valid fingerprint, or any item that is not
// one, trusts nothing (the widget then says the page is misconfigured); it
// never falls back to the list the service publishes.

const HEX40 = /^[0-9A-F]{40}$/;

// canonFP returns s as 40 upper-case hex digits when it is a fingerprint in
// one of the forms people paste (groups separated by spaces, 40 hex digits
// in either case, pairs or groups joined by ':'), else ''.
export function canonFP(s) {
  const t = String(s ?? '').replace(/[\s:]/g, '').toUpperCase();
  return HEX40.test(t) ? t : '';
}

// humanFP shows a fingerprint as five groups of eight, like Pidgin.
export function humanFP(s) {
  const c = canonFP(s);
  return c ? c.replace(/(.{8})(?!$)/g, '$1 ') : '';
}

/**
 * parsePins reads the data-fingerprint attribute (null or undefined when the
 * page does not set it). Items are separated by commas; empty items (a
 * trailing comma) are skipped.
 * @param {string|null|undefined} attr
 * @returns {{present: boolean, ok: boolean, fingerprints: string[]}}
 */
export function parsePins(attr) {
  if (attr === null || attr === undefined) return { present: false, ok: true, fingerprints: [] };
  const fps = [];
  for (const item of String(attr).split(',')) {
    if (!item.trim()) continue;
    const fp = canonFP(item);
    if (!fp) return { present: true, ok: false, fingerprints: [] };
    if (!fps.includes(fp)) fps.push(fp);
  }
  return { present: true, ok: fps.length > 0, fingerprints: fps };
}
