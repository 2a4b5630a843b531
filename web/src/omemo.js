// @ts-check
// The page side of the OMEMO worker (omemo-worker.js; the engine's API is
// documented at the top of web/wasm/omemo/main.go).
//
// Loaded the same way as the OTR worker (otr.js): the worker script
// (assets/omemo-worker-<hash>.js: Go's wasm_exec.js followed by
// omemo-worker.js) is fetched with its sha384 integrity and started from a
// blob: URL, which is what a CSP with "worker-src blob:" allows for a
// script of another origin; the worker fetches the engine
// (assets/omemo-<hash>.wasm) with its integrity too. The launcher baked
// both hashes in, so SRI on the launcher covers them. The chat starts
// this only when the page can trust an OMEMO key: pages that use OTR
// alone never download the OMEMO engine.
//
//   const omemo = startOMEMO(assets, base);
//   const {device, fingerprint, list, bundle, state, restored} = await omemo.init(saved);
//   await omemo.peer(jid, device, bundleXML)        -> {fingerprint}
//   await omemo.encrypt(text, [{jid, device, fingerprint}]) -> {xml, state}
//   await omemo.keyTransport(recipients)             -> {xml, state}
//   await omemo.decrypt(fromBareJID, encryptedXML)
//                     -> {text, device, fingerprint, preKey, bundle, state}
//   omemo.terminate()
//
// Every call returns a promise; calls run in the worker one at a time, in
// the order they were made. A call that fails rejects with an Error whose
// message says why (never a key or message text); an encrypt or
// keyTransport that was refused has error.notSent === true, and then
// nothing was encrypted and the device did not change. Save each state a
// call returns before sending what it returned (the chat saves the state
// of an encrypt before the stanza leaves), so a reload never goes back to
// a state older than something sent.

import { compile, mark } from './otr.js';

/**
 * @typedef {{file: string, integrity: string}} Asset
 * @typedef {{jid: string, device: number, fingerprint: string}} Recipient
 */

/**
 * @param {{omemoWorker?: Asset, omemoWasm?: Asset}} assets the launcher's asset map
 * @param {string} [base] where the assets are served from ('' for the page's origin)
 */
export function startOMEMO(assets, base = '') {
  /** @type {Map<number, {resolve: (v: any) => void, reject: (e: Error) => void}>} */
  const waiting = new Map();
  let nextID = 1;
  /** @type {Error | null} */
  let dead = null; // set once the worker can no longer answer
  let url = '';
  const wasm = assets && assets.omemoWasm ? { url: base + 'assets/' + assets.omemoWasm.file, integrity: assets.omemoWasm.integrity } : null;
  // The engine is compiled here while it downloads, and checked against
  // its hash (otr.js compile); the worker fetches it itself only when that
  // fails.
  /** @type {WebAssembly.Module | null} */
  let module = null;
  const compiled = wasm ? compile(wasm, 'omemo-').then((m) => (module = m), () => null) : Promise.resolve(null);

  const die = (/** @type {Error} */ err) => {
    if (!dead) dead = err;
    if (url) URL.revokeObjectURL(url);
    url = '';
    for (const w of waiting.values()) w.reject(dead);
    waiting.clear();
  };

  // Calls wait for the worker and for the page's compile (which may fail:
  // then the worker fetches the engine), so that they keep their order.
  const started = Promise.all([spawn(assets, base), compiled]).then(([w]) => {
    url = w.url;
    if (dead) {
      // terminate() came first.
      w.worker.terminate();
      URL.revokeObjectURL(w.url);
      throw dead;
    }
    w.worker.onmessage = (e) => {
      const r = (e && e.data) || {};
      const p = waiting.get(r.id);
      if (!p) return;
      waiting.delete(r.id);
      if (url) {
        // The worker runs: its script's URL is no longer needed.
        URL.revokeObjectURL(url);
        url = '';
      }
      if (r.ok) {
        p.resolve(r.result);
      } else {
        const err = new Error(String(r.message || 'the OMEMO engine failed'));
        if (r.notSent) /** @type {any} */ (err).notSent = true;
        p.reject(err);
      }
    };
    w.worker.onerror = (e) => {
      die(new Error('the OMEMO worker stopped' + (e && e.message ? ': ' + e.message : '')));
    };
    return w.worker;
  });
  started.catch((err) => die(err instanceof Error ? err : new Error(String(err))));

  /**
   * call posts one request; requests reach the worker in the order of the
   * calls (each waits on the same start-up promise, in order).
   * @param {string} op @param {object} args @param {boolean} [sends] an encrypt
   */
  const call = (op, args, sends = false) =>
    started.then(
      (worker) =>
        new Promise((resolve, reject) => {
          if (dead) throw dead;
          const id = nextID++;
          waiting.set(id, { resolve, reject });
          worker.postMessage({ ...args, op, id });
        }),
    ).catch((err) => {
      const e = err instanceof Error ? err : new Error(String(err));
      if (sends && !(/** @type {any} */ (e).notSent)) {
        // The worker never answered: nothing was sent.
        const n = new Error(e.message);
        /** @type {any} */ (n).notSent = true;
        throw n;
      }
      throw e;
    });

  return {
    /** @param {string | null} state a state an earlier call returned, or null for a new device */
    init: (state) => {
      mark('omemo-init');
      // module is read when the request is posted (the spread in call),
      // after the page's compile settled.
      return call('init', {
        wasm,
        state: typeof state === 'string' ? state : null,
        get module() {
          return module;
        },
      });
    },
    /** @param {string} jid @param {number} device @param {string} bundle */
    peer: (jid, device, bundle) => call('peer', { jid, device, bundle }),
    /** @param {string} text @param {Recipient[]} recipients */
    encrypt: (text, recipients) => call('encrypt', { text, recipients: plain(recipients) }, true),
    /** @param {Recipient[]} recipients */
    keyTransport: (recipients) => call('keyTransport', { recipients: plain(recipients) }, true),
    /** @param {string} from @param {string} xml */
    decrypt: (from, xml) => call('decrypt', { from, xml }),
    terminate: () => {
      die(new Error('the OMEMO engine was stopped'));
      started.then((worker) => worker.terminate(), () => {});
    },
  };
}

// plain copies the recipients into plain objects of the three fields the
// engine reads (anything else would not survive postMessage anyway).
/** @param {Recipient[]} list */
function plain(list) {
  return Array.isArray(list) ? list.map((r) => ({ jid: String(r && r.jid), device: Number(r && r.device), fingerprint: String(r && r.fingerprint) })) : [];
}

// spawn fetches the worker script with its integrity and starts it from a
// blob: URL.
/** @param {{omemoWorker?: Asset, omemoWasm?: Asset}} assets @param {string} base */
async function spawn(assets, base) {
  if (!assets || !assets.omemoWorker || !assets.omemoWasm) throw new Error('the OMEMO engine is missing from this build');
  mark('omemo-worker-fetch');
  let res;
  try {
    res = await fetch(base + 'assets/' + assets.omemoWorker.file, { integrity: assets.omemoWorker.integrity, credentials: 'omit' });
  } catch {
    throw new Error('the OMEMO program could not be loaded or failed its integrity check');
  }
  if (!res.ok) throw new Error('the OMEMO program could not be loaded (HTTP ' + res.status + ')');
  const url = URL.createObjectURL(new Blob([await res.text()], { type: 'text/javascript' }));
  try {
    const worker = new Worker(url);
    mark('omemo-worker-created');
    return { worker, url };
  } catch {
    URL.revokeObjectURL(url);
    throw new Error('this page does not allow the OMEMO worker to run');
  }
}
