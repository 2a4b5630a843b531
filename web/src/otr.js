// @ts-check
// The page side of the OTR worker.
//
// The worker script (assets/worker-<hash>.js: Go's wasm_exec.js followed by
// worker.js) is fetched with its sha384 integrity and started from a blob:
// URL, which is what a CSP with "worker-src blob:" allows for a script of
// another origin. The wasm module is compiled here, on the page, and
// handed to the worker only once its sha384 hash matches the one the
// launcher names (see compile); the worker fetches it itself, with fetch
// integrity, only when that fails.
//
// round is the page's AKE round (see trust.js). Every op carries it and
// every event the worker posts carries the round of the op that caused it.
//
// The worker can be started before it is needed (warmOTR, on the launcher's
// hover or focus): it then loads and compiles the wasm module while the
// visitor decides to click; startOTR takes that worker when there is one.
//
// Messages to the worker:
//   {op:'load', module}         start the compiled module (a WebAssembly.Module)
//   {op:'load', wasm:{url,integrity}}  fetch, compile and start the module
//   {op:'init', wasm:{url,integrity}, policy, state}
//                               (loads the module first when not yet asked)
//   {op:'query', round}         a fresh conversation, and its OTR query
//   {op:'reset', round, at}     a fresh conversation; the page sent the query
//                               itself at Date.now() == at
//   {op:'send', round, id, text, instance, fingerprint}
//                               encrypt text to exactly that session
//                               (conv.sendTo); answered by 'sent' or 'not-sent'
//   {op:'receive', round, body} a body from the network
//   {op:'end', round, id}       the OTR disconnect; answered by 'done'
//   {op:'pow', id, challenge, bits}  a proof-of-work stamp (pow.js); answered
//                               by {ev:'pow', id, nonce}
// Messages from the worker (each with round):
//   {ev:'ready', restored} {ev:'fatal', message}
//   {ev:'send', body, id?}      a body for the network; id: the visitor
//                               message it carries (from a 'send' op)
//   {ev:'show', text, encrypted, instance, fingerprint}
//                               encrypted is the engine's word: false for
//                               plaintext, also inside a fragment; instance
//                               and fingerprint of the session that decrypted
//                               it (0 and '' when not encrypted)
//   {ev:'secure', instance, fingerprint, refreshed}
//   {ev:'insecure', instance}   the operator ended that private session
//   {ev:'sent', id} {ev:'not-sent', id}
//                               not-sent: nothing was encrypted or sent, the
//                               session was not (or no longer) that one
//   {ev:'resent', instance, fingerprint}  the last message went again, to
//                               the same session
//   {ev:'peer-error', message}  an OTR error text from the other side (its words)
//   {ev:'state', state}         the visitor's key and instance tag, to keep
//   {ev:'error', message} {ev:'done', id}
//   {ev:'timing', ake, akeCPU, init}  milliseconds: the last AKE (wall, and
//                               inside the engine), wasm start
//   {ev:'mark', name, at}       a point of the start-up or the AKE, at a time
//                               on the shared clock (timeOrigin + now())
// Fingerprints in events are 40 upper-case hex digits.
//
// Each step is also a performance mark named "otrdesk:<step>" on the page's
// timeline (the worker's marks moved onto it), for benchmarks and the
// browser's developer tools.

/** @param {string} name @param {number} [at] a time on the shared clock */
export function mark(name, at) {
  try {
    performance.mark('otrdesk:' + name, at === undefined ? undefined : { startTime: Math.max(0, at - performance.timeOrigin) });
  } catch {
    // marks are for measuring only
  }
}

/** @typedef {{worker: Worker, url: string, failed: string}} Warm */
/** @type {Map<string, Promise<Warm>>} */
const warm = new Map();

// warmOTR starts the worker and has it load the wasm module, once per
// worker file; startOTR takes the worker it made.
export function warmOTR(base, assets) {
  if (!assets.worker || !assets.wasm) return Promise.reject(new Error('the encryption engine is missing from this build'));
  const wasm = { url: base + 'assets/' + assets.wasm.file, integrity: assets.wasm.integrity };
  const key = wasm.url;
  let p = warm.get(key);
  if (!p) {
    p = spawn(base, assets, wasm);
    warm.set(key, p);
    p.catch(() => warm.delete(key)); // a failure is tried again on the next start
  }
  return p;
}

// compile fetches the wasm module and compiles it while it downloads; the
// worker gets the compiled module. Done here, it runs while the worker's
// own script is fetched and its thread starts.
//
// Fetch's integrity option would hold the whole body back until it has
// been checked, so nothing could be compiled while it downloads. Instead
// the body is compiled as it arrives and, at the same time, hashed; the
// module is handed on only if the hash is the one this build baked in
// (compiling runs nothing: only instantiating would). Without WebCrypto (a
// page that is not a secure context) it falls back to fetch integrity.
export async function compile(wasm, prefix = '') {
  mark(prefix + 'wasm-fetch');
  const [alg, want] = String(wasm.integrity).split(/-(.*)/s);
  const streaming = alg === 'sha384' && globalThis.crypto && crypto.subtle && WebAssembly.compileStreaming;
  const res = await fetch(wasm.url, streaming ? { credentials: 'omit' } : { integrity: wasm.integrity, credentials: 'omit' });
  if (!res.ok) throw new Error('HTTP ' + res.status);
  let module;
  if (streaming) {
    let bytes;
    if (res.body) {
      const [toCompile, toHash] = res.body.tee();
      [module, bytes] = await Promise.all([
        WebAssembly.compileStreaming(new Response(toCompile, { headers: { 'Content-Type': 'application/wasm' } })),
        new Response(toHash).arrayBuffer(),
      ]);
    } else {
      bytes = await res.arrayBuffer();
    }
    const sum = new Uint8Array(await crypto.subtle.digest('SHA-384', bytes));
    if (btoa(String.fromCharCode(...sum)) !== want) throw new Error('the encryption engine failed its integrity check');
    if (!module) module = await WebAssembly.compile(bytes);
  } else {
    module = await WebAssembly.compile(await res.arrayBuffer());
  }
  mark(prefix + 'wasm-compiled');
  return module;
}

async function spawn(base, assets, wasm) {
  const compiled = compile(wasm);
  compiled.catch(() => {}); // (awaited below)
  mark('worker-fetch');
  let res;
  try {
    res = await fetch(base + 'assets/' + assets.worker.file, { integrity: assets.worker.integrity, credentials: 'omit' });
  } catch {
    throw new Error('the encryption program could not be loaded or failed its integrity check');
  }
  if (!res.ok) throw new Error('the encryption program could not be loaded (HTTP ' + res.status + ')');
  const url = URL.createObjectURL(new Blob([await res.text()], { type: 'text/javascript' }));
  let worker;
  try {
    worker = new Worker(url);
  } catch {
    URL.revokeObjectURL(url);
    throw new Error('this page does not allow the encryption worker to run');
  }
  mark('worker-created');
  /** @type {Warm} */
  const w = { worker, url, failed: '' };
  // Until startOTR takes over, only the marks and a failure are of interest.
  worker.onmessage = (e) => {
    if (e.data && e.data.ev === 'mark') mark(e.data.name, e.data.at);
  };
  worker.onerror = (e) => {
    w.failed = (e && e.message) || 'unknown error';
  };
  let module = null;
  try {
    module = await compiled;
  } catch {
    // The worker fetches and compiles it itself, and says what fails.
  }
  worker.postMessage(module ? { op: 'load', module } : { op: 'load', wasm });
  return w;
}

export async function startOTR({ base, assets, policy, state, onEvent }) {
  if (!assets.worker || !assets.wasm) throw new Error('the encryption engine is missing from this build');
  const key = base + 'assets/' + assets.wasm.file;
  const warmed = warmOTR(base, assets);
  warm.delete(key); // this worker is now the chat's: a new chat starts another
  const w = await warmed;
  const { worker, url } = w;
  const waiting = new Map();
  let nextID = 1;
  const api = {
    restored: false,
    lastAKE: 0,
    query: (round) => {
      mark('query');
      worker.postMessage({ op: 'query', round });
    },
    reset: (round, at) => {
      mark('query', at - Date.now() + performance.timeOrigin + performance.now());
      worker.postMessage({ op: 'reset', round, at });
    },
    send: (round, id, text, instance, fingerprint) => worker.postMessage({ op: 'send', round, id, text, instance, fingerprint }),
    receive: (round, body) => worker.postMessage({ op: 'receive', round, body }),
    end: (round) =>
      new Promise((resolve) => {
        const id = nextID++;
        waiting.set(id, resolve);
        worker.postMessage({ op: 'end', round, id });
      }),
    pow: (challenge, bits) =>
      new Promise((resolve) => {
        const id = nextID++;
        waiting.set(id, resolve);
        worker.postMessage({ op: 'pow', id, challenge, bits });
      }),
    terminate: () => worker.terminate(),
  };
  return new Promise((resolve, reject) => {
    if (w.failed) {
      URL.revokeObjectURL(url);
      reject(new Error('the encryption worker failed to start: ' + w.failed));
      return;
    }
    worker.onerror = (e) => {
      URL.revokeObjectURL(url);
      reject(new Error('the encryption worker failed to start' + (e && e.message ? ': ' + e.message : '')));
    };
    worker.onmessage = (e) => {
      const ev = e.data || {};
      switch (ev.ev) {
        case 'mark':
          mark(ev.name, ev.at);
          break;
        case 'ready':
          mark('ready');
          URL.revokeObjectURL(url);
          api.restored = !!ev.restored;
          worker.onerror = (err) => onEvent({ ev: 'error', message: 'The encryption worker stopped: ' + (err.message || 'unknown error') + '.' });
          resolve(api);
          break;
        case 'fatal':
          URL.revokeObjectURL(url);
          worker.terminate();
          reject(new Error(ev.message));
          break;
        case 'pow':
        case 'done': {
          const f = waiting.get(ev.id);
          waiting.delete(ev.id);
          if (f) f(ev.nonce);
          break;
        }
        case 'timing':
          // Read by the browser benchmark: wall time of the AKE (network
          // round trips included), time inside the engine, wasm start-up.
          api.lastAKE = ev.ake;
          globalThis.__otrdeskTiming = { ake: ev.ake, akeCPU: ev.akeCPU, init: ev.init };
          break;
        default:
          onEvent(ev);
      }
    };
    worker.postMessage({ op: 'init', wasm: { url: key, integrity: assets.wasm.integrity }, policy, state });
  });
}
