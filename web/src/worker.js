// The OTR worker: runs the Go OTR engine (web/wasm, compiled to WebAssembly)
// off the page's main thread and speaks the small message protocol described
// in otr.js. Go's wasm_exec.js is prepended to this file at build time, so
// globalThis.Go exists here; nothing is loaded with importScripts.
//
// Page -> worker: init {wasm:{url,integrity}, policy, state}, query, reset
// {at}, send {text}, receive {body}, end {id}. Worker -> page: see otr.js.

/* global Go */
let engine = null; // adapter over the wasm API, see bind()
let akeStart = 0; // wall clock at the query (or the first AKE message)
let akeCPU = 0; // time spent inside the engine since then
let initMs = 0; // fetch + compile + start of the wasm module

const post = (m) => self.postMessage(m);

self.onmessage = async (e) => {
  const m = e.data || {};
  try {
    if (m.op === 'init') {
      await init(m);
      return;
    }
    if (!engine) throw new Error('the encryption engine is not running');
    switch (m.op) {
      case 'query':
        // A fresh AKE starts from a fresh conversation (same key and
        // instance tag), so no session with an earlier operator remains
        // for send() to pick.
        engine.reset();
        akeStart = performance.now();
        akeCPU = 0;
        deliver(timed(() => engine.query()));
        break;
      case 'reset':
        engine.reset();
        akeStart = performance.now() - Math.max(0, Date.now() - m.at);
        akeCPU = 0;
        break;
      case 'send':
        deliver(engine.send(m.text));
        break;
      case 'receive':
        if (!akeStart && /^\?OTR:AAM[CK]/.test(m.body)) {
          akeStart = performance.now();
          akeCPU = 0;
        }
        deliver(akeStart ? timed(() => engine.receive(m.body)) : engine.receive(m.body));
        break;
      case 'end':
        deliver(engine.end());
        post({ ev: 'done', id: m.id });
        break;
      default:
    }
  } catch (err) {
    post({ ev: 'error', message: 'Encryption error: ' + ((err && err.message) || String(err)) });
    if (m.op === 'end') post({ ev: 'done', id: m.id });
  }
};

async function init(m) {
  try {
    const t0 = performance.now();
    const res = await fetch(m.wasm.url, { integrity: m.wasm.integrity, credentials: 'omit' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const go = new Go();
    let instance;
    if (WebAssembly.instantiateStreaming && /^application\/wasm\b/.test(res.headers.get('Content-Type') || '')) {
      // Compiles while downloading, and lets the browser cache the
      // compiled code for the next visit.
      ({ instance } = await WebAssembly.instantiateStreaming(res, go.importObject));
    } else {
      ({ instance } = await WebAssembly.instantiate(await res.arrayBuffer(), go.importObject));
    }
    go.run(instance); // not awaited: main never returns, so the API stays alive
    engine = await bind(m.policy, m.state);
    initMs = performance.now() - t0;
    post({ ev: 'ready', restored: false });
  } catch (err) {
    post({ ev: 'fatal', message: 'the encryption engine could not start: ' + ((err && err.message) || String(err)) });
  }
}

// timed runs one engine call and adds its duration to akeCPU.
function timed(f) {
  const t0 = performance.now();
  try {
    return f();
  } finally {
    akeCPU += performance.now() - t0;
  }
}

// deliver turns the engine's Result into events for the page.
function deliver(r) {
  if (!r) return;
  for (const body of r.send || []) post({ ev: 'send', body });
  for (const msg of r.show || []) post({ ev: 'show', text: msg.text, encrypted: !!msg.encrypted });
  for (const ev of r.events || []) {
    switch (ev.type) {
      case 'secure':
        if (akeStart) post({ ev: 'timing', ake: performance.now() - akeStart, akeCPU, init: initMs });
        akeStart = 0;
        post({ ev: 'secure', fingerprint: ev.fingerprint, refreshed: !!ev.refreshed });
        break;
      case 'insecure':
        post({ ev: 'insecure' });
        break;
      case 'unencrypted':
      case 'error':
      case 'peer-error':
        if (ev.message) post({ ev: 'error', message: ev.message });
        break;
      default:
    }
  }
  if (r.error) post({ ev: 'error', message: 'A message could not be handled securely (' + r.error.replace(/^otr: /, '') + ').' });
}

// bind adapts the JS API that web/wasm/main.go registers on globalThis.otrdesk
// (documented at the top of that file). The engine cannot export a running
// session, so what survives a reload is the visitor's key and instance tag:
// the widget then runs a fresh AKE under the same identity.
async function bind(policy, state) {
  for (let i = 0; i < 200 && !globalThis.otrdesk; i++) await new Promise((r) => setTimeout(r, 5));
  const api = globalThis.otrdesk;
  if (!api || typeof api.newConversation !== 'function') throw new Error('the wasm module registered no API');
  let key = state && typeof state.key === 'string' ? state.key : null;
  let conv;
  try {
    if (!key) key = api.generateKey();
    conv = api.newConversation({ policy, key, instanceTag: state && state.tag >= 0x100 ? state.tag : undefined });
  } catch {
    // A saved key the engine refuses: start over with a new identity.
    key = api.generateKey();
    conv = api.newConversation({ policy, key });
  }
  if (!key) throw new Error('no key could be generated');
  const tag = conv.instanceTag();
  post({ ev: 'state', state: { key, tag } });
  return {
    reset: () => {
      conv = api.newConversation({ policy, key, instanceTag: tag });
    },
    query: () => conv.query(),
    send: (text) => conv.send(text),
    receive: (body) => conv.receive(body),
    end: () => conv.end(),
  };
}
