// @ts-check
// The XMPP side of OMEMO in the chat (docs/control-channel.md, "OMEMO keys
// between the widget and the component"): handing the visitor's keys to
// the skin, reading the operator's devices from it, and the message that
// carries an <encrypted/> element. No DOM beyond XML, no decisions: which
// devices may be written to is trust.js's, the keys are the OMEMO worker's
// (omemo.js). Everything read here comes from the service and is hostile:
// the device list is bounded, each bundle goes to the engine, which checks
// its signature and pins its identity key, and trust.js decides what the
// keys are worth.

import { $iq, $msg } from 'strophe.js';

export const NS_OMEMO = 'eu.siacs.conversations.axolotl';
const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
const NS_EME = 'urn:xmpp:eme:0';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
export const DEVICE_LIST = NS_OMEMO + '.devicelist';
export const bundleNode = (/** @type {number} */ id) => NS_OMEMO + '.bundles:' + id;

// What a client without OMEMO shows instead of the message (the words
// Conversations and Gajim use).
export const FALLBACK = 'I sent you an OMEMO encrypted message but your client doesn’t seem to support that.';

// An operator account with more devices than this is not read further.
const MAX_DEVICES = 16;
const IQ_TIMEOUT_MS = 15000;

/** @param {string} xml @returns {Element} */
function parse(xml) {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const root = doc.documentElement;
  if (!root || root.getElementsByTagName('parsererror').length || root.localName === 'parsererror') throw new Error('the OMEMO engine wrote XML that does not parse');
  return root;
}

/** @param {Element} el */
export function serialize(el) {
  return new XMLSerializer().serializeToString(el);
}

/** @param {Element} el @param {string} ns @param {string} name */
function child(el, ns, name) {
  for (const c of Array.from(el.children)) if (c.namespaceURI === ns && c.localName === name) return c;
  return null;
}

/**
 * iq sends an IQ and resolves with the result, or rejects with an Error
 * whose message is the error's condition ('timeout' when none came).
 * @param {any} conn a Strophe connection
 * @param {any} stanza
 * @returns {Promise<Element>}
 */
function iq(conn, stanza) {
  return new Promise((resolve, reject) => {
    conn.sendIQ(
      stanza,
      (/** @type {Element} */ res) => resolve(res),
      (/** @type {Element|null} */ err) => {
        let cond = 'timeout';
        const e = err && err.getElementsByTagName('error')[0];
        if (e) for (const c of Array.from(e.children)) if (c.namespaceURI === NS_STANZAS && c.localName !== 'text') cond = c.localName;
        reject(new Error(cond));
      },
      IQ_TIMEOUT_MS,
    );
  });
}

/**
 * publish sends one item (xml, as the engine wrote it) to a node of the
 * skin's PEP for this visitor.
 * @param {any} conn @param {string} skin @param {string} node @param {string} xml
 */
function publish(conn, skin, node, xml) {
  return iq(conn, $iq({ type: 'set', to: skin }).c('pubsub', { xmlns: NS_PUBSUB }).c('publish', { node }).c('item', { id: 'current' }).cnode(parse(xml)));
}

/**
 * handKeys publishes the visitor's device list and bundle to the skin, in
 * that order, both sent at once: the component handles one sender's
 * stanzas in order, so whatever is sent after them (the chat's opening
 * message, a resumption) finds the keys there.
 * @param {any} conn
 * @param {string} skin the skin's bare JID
 * @param {{device: number, list: string, bundle: string}} keys
 * @returns {Promise<unknown>} settles when both are answered
 */
export function handKeys(conn, skin, keys) {
  return Promise.all([publish(conn, skin, DEVICE_LIST, keys.list), publish(conn, skin, bundleNode(keys.device), keys.bundle)]);
}

/**
 * republish sends a new bundle (a one-time prekey was used up).
 * @param {any} conn @param {string} skin @param {number} device @param {string} bundle
 */
export function republish(conn, skin, device, bundle) {
  return publish(conn, skin, bundleNode(device), bundle);
}

/**
 * items reads one PEP node of the skin and returns the payload of its
 * first item, or null. A 'wait' answer (the operator's server was slow) is
 * asked once more. flush sends what is queued now: a request made while
 * an answer is handled would otherwise wait for Strophe's next tick.
 * @param {any} conn @param {string} skin @param {string} node @param {() => void} flush
 * @returns {Promise<Element|null>}
 */
async function items(conn, skin, node, flush) {
  const ask = () => {
    const p = iq(conn, $iq({ type: 'get', to: skin }).c('pubsub', { xmlns: NS_PUBSUB }).c('items', { node }));
    flush();
    return p;
  };
  let res;
  try {
    res = await ask();
  } catch (e) {
    if (!(e instanceof Error) || e.message !== 'remote-server-timeout') throw e;
    res = await ask();
  }
  const ps = child(res, NS_PUBSUB, 'pubsub');
  const its = ps && child(ps, NS_PUBSUB, 'items');
  const item = its && child(its, NS_PUBSUB, 'item');
  return (item && item.firstElementChild) || null;
}

/**
 * readDevices reads the devices the skin hands out for the operator of this
 * chat and gives each bundle to peer (the engine: it checks the bundle and
 * returns its identity key's fingerprint, or throws). A device whose bundle
 * cannot be read or is refused is left out; every device is reported to
 * trust.js, which keeps the trusted ones.
 * @param {any} conn @param {string} skin
 * @param {(device: number, bundle: string) => Promise<string>} peer
 * @param {() => void} flush sends the queued requests (chat.js flushSoon)
 * @returns {Promise<{devices: {device: number, fingerprint: string}[], refused: number}>}
 */
export async function readDevices(conn, skin, peer, flush) {
  const list = await items(conn, skin, DEVICE_LIST, flush);
  /** @type {number[]} */
  const ids = [];
  if (list && list.namespaceURI === NS_OMEMO && list.localName === 'list') {
    for (const d of Array.from(list.children)) {
      if (d.namespaceURI !== NS_OMEMO || d.localName !== 'device') continue;
      const s = d.getAttribute('id') || '';
      const id = /^[1-9][0-9]{0,9}$/.test(s) ? Number(s) : 0;
      if (id > 0 && id < 2 ** 31 && !ids.includes(id)) ids.push(id);
      if (ids.length >= MAX_DEVICES) break;
    }
  }
  // The bundles are asked for at once (one round trip, not one per
  // device); each goes to the engine as it comes.
  const read = await Promise.all(
    ids.map(async (id) => {
      try {
        const b = await items(conn, skin, bundleNode(id), flush);
        if (!b || b.namespaceURI !== NS_OMEMO || b.localName !== 'bundle') throw new Error('no bundle');
        return { device: id, fingerprint: await peer(id, serialize(b)) };
      } catch {
        return null;
      }
    }),
  );
  const devices = read.filter((d) => d !== null);
  return { devices, refused: read.length - devices.length };
}

/**
 * encrypted returns the <encrypted/> element of a message, or null.
 * @param {Element} m
 */
export function encryptedOf(m) {
  return child(m, NS_OMEMO, 'encrypted');
}

/**
 * message is the stanza that carries an <encrypted/> element (as the
 * engine wrote it) to the skin: the fallback body, EME (XEP-0380), and the
 * hints that keep it out of carbons and archives.
 * @param {string} to @param {string} id @param {string} xml
 */
export function message(to, id, xml) {
  return $msg({ to, type: 'chat', id })
    .c('body')
    .t(FALLBACK)
    .up()
    .cnode(parse(xml))
    .up()
    .c('encryption', { xmlns: NS_EME, namespace: NS_OMEMO, name: 'OMEMO' })
    .up()
    .c('private', { xmlns: NS_CARBONS })
    .up()
    .c('no-copy', { xmlns: NS_HINTS })
    .up()
    .c('no-store', { xmlns: NS_HINTS })
    .up();
}
