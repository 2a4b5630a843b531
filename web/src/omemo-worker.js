// @ts-check
// The OMEMO worker: runs the Go OMEMO engine (web/wasm/omemo, compiled to
// WebAssembly; its API is documented at the top of its main.go) off the
// page's main thread. Go's wasm_exec.js is prepended to this file at build
// time, so globalThis.Go exists here; nothing is loaded with importScripts.
//
// The worker holds one device. The page (omemo.js) sends requests, each
// with an id, and gets exactly one reply per request:
//
//   {id, op:'init', wasm:{url, integrity}, state}   (or module: a compiled,
//                                  already checked WebAssembly.Module)
//        -> {device, fingerprint, list, bundle, state, restored}
//           the saved device (state) when it restores, else a new one
//   {id, op:'peer', jid, device, bundle}           -> {fingerprint}
//   {id, op:'encrypt', text, recipients}           -> {xml, state}
//   {id, op:'keyTransport', recipients}            -> {xml, state}
//   {id, op:'decrypt', from, xml}
//        -> {text, device, fingerprint, preKey, bundle, state}
//           text null for a key transport element; bundle: the bundle to
//           publish again when a one-time prekey was used, else null
//
//   replies: {id, ok:true, result} | {id, ok:false, message, notSent}
//   (notSent: an encrypt or keyTransport that sent and changed nothing)
//
// Requests are handled one at a time, in the order they were posted: each
// waits for the one before it, also across the asynchronous start-up. The
// messages in replies are the engine's sentences; they never hold keys or
// message text.

/* global Go */

// One-time prekeys of the visitor's device: it lives for the chats of
// one tab, so a few suffice (an operator has one to three devices).
const PREKEYS = 10;

/** @type {any} */
let api = null; // globalThis.otrdeskOmemo, once the module runs
/** @type {any} */
let dev = null; // the device
/** @type {Promise<void> | null} */
let loading = null;
/** @type {Promise<void>} */
let queue = Promise.resolve();

self.onmessage = (e) => {
  const m = (e && e.data) || {};
  queue = queue.then(() => handle(m));
};

/** @param {any} m */
async function handle(m) {
  try {
    const result = await run(m);
    self.postMessage({ id: m.id, ok: true, result });
  } catch (err) {
    self.postMessage({ id: m.id, ok: false, message: String((err && err.message) || err), notSent: !!(err && err.notSent) });
  }
}

/** @param {string} message @param {boolean} [notSent] */
function failure(message, notSent = false) {
  const err = new Error(message);
  /** @type {any} */ (err).notSent = notSent;
  return err;
}

/** @param {any} m */
async function run(m) {
  if (m.op === 'init') return init(m);
  if (!dev) throw failure('the OMEMO engine is not running', m.op === 'encrypt' || m.op === 'keyTransport');
  switch (m.op) {
    case 'peer': {
      const r = dev.peer(String(m.jid), m.device, String(m.bundle));
      if (!r || r.error) throw failure((r && r.error) || 'the bundle was not read');
      return { fingerprint: r.fingerprint };
    }
    case 'encrypt':
    case 'keyTransport': {
      const r = m.op === 'encrypt' ? dev.encrypt(String(m.text), m.recipients) : dev.keyTransport(m.recipients);
      if (!r || r.notSent || r.error || !r.xml) throw failure((r && r.error) || 'nothing was encrypted', true);
      return { xml: r.xml, state: r.state };
    }
    case 'decrypt': {
      const r = dev.decrypt(String(m.from), String(m.xml));
      if (!r || r.error) throw failure((r && r.error) || 'the message was not decrypted');
      return {
        text: typeof r.text === 'string' ? r.text : null,
        device: r.device,
        fingerprint: r.fingerprint,
        preKey: !!r.preKey,
        bundle: r.republish ? dev.bundle() : null,
        state: r.state,
      };
    }
    default:
      throw failure('unknown request ' + String(m.op));
  }
}

/** @param {any} m */
async function init(m) {
  try {
    await load(m);
  } catch (err) {
    loading = null; // a later init tries again
    throw failure('the OMEMO engine could not start: ' + String((err && err.message) || err));
  }
  let restored = false;
  dev = null;
  if (typeof m.state === 'string' && m.state) {
    dev = api.restore(m.state);
    restored = !!dev;
  }
  if (!dev) {
    // No saved device, or one the engine refuses: a new identity.
    const d = api.newDevice(PREKEYS);
    if (!d || d.error) throw failure('the OMEMO engine could not make a device: ' + ((d && d.error) || 'unknown error'));
    dev = d;
  }
  const state = dev.export();
  if (!state) throw failure('the OMEMO device could not be saved');
  return { device: dev.id(), fingerprint: dev.fingerprint(), list: dev.deviceList(), bundle: dev.bundle(), state, restored };
}

// load starts the wasm module, once: the module the page compiled and
// checked (m.module), or else the one at m.wasm, fetched here with its
// integrity, so the browser refuses bytes other than the build's.
/** @param {any} m */
function load(m) {
  if (!loading) {
    loading = (async () => {
      const go = new Go();
      let instance;
      if (m.module instanceof WebAssembly.Module) {
        instance = await WebAssembly.instantiate(m.module, go.importObject);
      } else {
        if (!m.wasm || !m.wasm.url || !m.wasm.integrity) throw new Error('no engine to load');
        const res = await fetch(m.wasm.url, { integrity: m.wasm.integrity, credentials: 'omit' });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        if (WebAssembly.instantiateStreaming && /^application\/wasm\b/.test(res.headers.get('Content-Type') || '')) {
          ({ instance } = await WebAssembly.instantiateStreaming(res, go.importObject));
        } else {
          ({ instance } = await WebAssembly.instantiate(await res.arrayBuffer(), go.importObject));
        }
      }
      go.run(instance); // not awaited: main never returns, so the API stays alive
      // main registers the API at once; wait a few turns for it.
      for (let i = 0; i < 200 && !globalThis.otrdeskOmemo; i++) await new Promise((r) => setTimeout(r, 5));
      api = globalThis.otrdeskOmemo;
      if (!api || api.version !== '1' || typeof api.newDevice !== 'function') throw new Error('the wasm module registered no OMEMO API');
    })();
  }
  return loading;
}
