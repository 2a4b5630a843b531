// The OTR worker: runs the Go OTR engine (web/wasm, compiled to WebAssembly)
// off the page's main thread and speaks the small message protocol described
// in otr.js. Go's wasm_exec.js is prepended to this file at build time, so
// globalThis.Go exists here; nothing is loaded with importScripts.

/* global Go */
let engine = null; // adapter over the wasm API, see bind()
let akeStart = 0;

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
        akeStart = performance.now();
        deliver(engine.query());
        break;
      case 'send':
        deliver(engine.send(m.text));
        break;
      case 'receive':
        if (!akeStart && /^\?OTR:AAM[CK]/.test(m.body)) akeStart = performance.now();
        deliver(engine.receive(m.body));
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
    const res = await fetch(m.wasm.url, { integrity: m.wasm.integrity, credentials: 'omit' });
    if (!res.ok) throw new Error('HTTP ' + res.status);
    const bytes = await res.arrayBuffer();
    const go = new Go();
    const { instance } = await WebAssembly.instantiate(bytes, go.importObject);
    go.run(instance); // returns when the Go program exits; the API stays registered
    engine = await bind(m.policy);
    const restored = m.state ? engine.restore(m.state) : false;
    post({ ev: 'ready', restored });
  } catch (err) {
    post({ ev: 'fatal', message: 'the encryption engine could not start: ' + ((err && err.message) || String(err)) });
  }
}

// deliver turns the engine's result into events for the page.
function deliver(r) {
  if (!r) return;
  for (const body of r.send || []) post({ ev: 'send', body });
  for (const msg of r.show || []) post({ ev: 'show', text: msg.text, encrypted: !!msg.encrypted });
  for (const ev of r.events || []) {
    if (ev.type === 'secure') {
      if (akeStart) post({ ev: 'timing', ake: performance.now() - akeStart });
      akeStart = 0;
      post({ ev: 'secure', fingerprint: ev.fingerprint });
    } else if (ev.type === 'insecure') {
      post({ ev: 'insecure' });
    } else if (ev.type === 'error') {
      post({ ev: 'error', message: ev.message });
    }
  }
  if (engine && engine.exportState) {
    const state = engine.exportState();
    if (state) post({ ev: 'state', state });
  }
}

// bind adapts the JS API that web/wasm/main.go registers. It waits briefly
// for the Go program to register it (go.run starts main synchronously, but
// registration may happen after the first scheduling point).
async function bind(policy) {
  for (let i = 0; i < 100 && !globalThis.otrdesk; i++) await new Promise((r) => setTimeout(r, 10));
  const api = globalThis.otrdesk;
  if (!api) throw new Error('the wasm module registered no API');
  const conv = api.newConversation({ policy });
  return {
    query: () => conv.query(),
    send: (text) => conv.send(text),
    receive: (body) => conv.receive(body),
    end: () => conv.end(),
    restore: (state) => (conv.restore ? conv.restore(state) : false),
    exportState: conv.export ? () => conv.export() : null,
  };
}
