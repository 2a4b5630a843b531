// @ts-check
// The OTR worker: runs the Go OTR engine (web/wasm, compiled to WebAssembly)
// off the page's main thread and speaks the small message protocol described
// in otr.js. Go's wasm_exec.js is prepended to this file at build time, so
// globalThis.Go exists here; nothing is loaded with importScripts.
//
// Start-up has two steps, so the expensive one can run before the visitor
// has clicked (the launcher warms the worker on hover or focus): 'load'
// fetches, compiles and starts the wasm module; 'init' makes or restores the
// visitor's key and the conversation.
//
// The worker reports where its time goes as marks ({ev:'mark', name, at}:
// at is a time on the shared clock, performance.timeOrigin + now()), which
// the page turns into performance marks: they cost nothing and let a
// benchmark or the browser's developer tools show the chat's start-up.
//
// Every op from the page carries the page's AKE round; every event this
// worker posts carries the round of the op that caused it, so the page can
// drop what belongs to an older round. Ops are handled one at a time, in
// the order they were posted.

/* global Go */
import { solve } from './pow.js';

/** @type {any} */
let engine = null; // adapter over the wasm API, see bind()
let akeStart = 0; // wall clock at the query (or the first AKE message)
let akeCPU = 0; // time spent inside the engine since then
let initMs = 0; // fetch + compile + start of the wasm module
let opRound = 0; // the round of the op being handled

const post = (m) => self.postMessage({ ...m, round: opRound });
const mark = (name, t = performance.now()) => self.postMessage({ ev: 'mark', name, at: performance.timeOrigin + t });

// The AKE's messages, by the start of their base64 (protocol version 2 or
// 3, then the message type), named for the marks.
const AKE_STEPS = { C: 'dh-commit', K: 'dh-key', R: 'reveal-sig', S: 'sig' };
const akeStep = (body) => {
  const m = /^\?OTR:AA[IM]([CKRS])/.exec(body);
  return m ? AKE_STEPS[m[1]] : '';
};

/** @type {Promise<void> | null} */
let loading = null; // the wasm module's load, once asked for
let spare = ''; // a visitor key made at load, while nobody waited for it
let started = false; // init has been asked for: the warm-up gives way

self.onmessage = async (e) => {
  const m = e.data || {};
  opRound = Number.isInteger(m.round) ? m.round : 0;
  try {
    if (m.op === 'load') {
      await load(m).catch(() => {}); // 'init' reports the failure
      return;
    }
    if (m.op === 'init') {
      started = true;
      await init(m);
      return;
    }
    if (m.op === 'pow') {
      // A proof-of-work stamp for a new chat (pow.js); needs no engine.
      post({ ev: 'pow', id: m.id, nonce: solve(String(m.challenge), Number(m.bits)) });
      return;
    }
    if (!engine) throw new Error('the encryption engine is not running');
    switch (m.op) {
      case 'query':
        // A fresh AKE starts from a fresh conversation (same key and
        // instance tag), so no session of an earlier round remains.
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
      case 'send': {
        // Only to the session the page named: the engine refuses when that
        // instance is not encrypted with that key, and then nothing is sent
        // and nothing is kept for later.
        const r = engine.sendTo(m.instance, m.fingerprint, m.text);
        if (!r || r.notSent || (r.error && !(r.send && r.send.length))) {
          post({ ev: 'not-sent', id: m.id });
          break;
        }
        deliver(r, m.id);
        post({ ev: 'sent', id: m.id });
        break;
      }
      case 'receive': {
        const step = akeStep(m.body);
        if (step) mark('recv-' + step);
        if (!akeStart && /^\?OTR:AAM[CK]/.test(m.body)) {
          akeStart = performance.now();
          akeCPU = 0;
        }
        deliver(akeStart ? timed(() => engine.receive(m.body)) : engine.receive(m.body));
        break;
      }
      case 'end':
        deliver(engine.end());
        post({ ev: 'done', id: m.id });
        break;
      default:
    }
  } catch (err) {
    post({ ev: 'error', message: 'Encryption error: ' + ((err && err.message) || String(err)) });
    if (m.op === 'end') post({ ev: 'done', id: m.id });
    if (m.op === 'send') post({ ev: 'not-sent', id: m.id });
  }
};

// load starts the wasm module, once: the module the page compiled
// (m.module), or else the one at m.wasm, fetched with its integrity and
// compiled here. The engine's API is then on globalThis.otrdesk.
function load(m) {
  if (!loading) {
    loading = (async () => {
      const t0 = performance.now();
      const go = new Go();
      let instance;
      if (m.module instanceof WebAssembly.Module) {
        instance = await WebAssembly.instantiate(m.module, go.importObject);
      } else {
        mark('wasm-fetch', t0);
        const res = await fetch(m.wasm.url, { integrity: m.wasm.integrity, credentials: 'omit' });
        if (!res.ok) throw new Error('HTTP ' + res.status);
        if (WebAssembly.instantiateStreaming && /^application\/wasm\b/.test(res.headers.get('Content-Type') || '')) {
          // Compiles while downloading.
          ({ instance } = await WebAssembly.instantiateStreaming(res, go.importObject));
        } else {
          ({ instance } = await WebAssembly.instantiate(await res.arrayBuffer(), go.importObject));
        }
        mark('wasm-compiled');
      }
      mark('wasm-instantiated');
      go.run(instance); // not awaited: main never returns, so the API stays alive
      for (let i = 0; i < 200 && !globalThis.otrdesk; i++) await new Promise((r) => setTimeout(r, 5));
      mark('wasm-running');
      initMs = performance.now() - t0;
      if (!started) setTimeout(warmUp, 0);
    })();
  }
  return loading;
}

// warmUp runs, while the worker has nothing else to do, what the chat will
// run: a visitor key (kept for the chat) and a whole AKE between two
// throwaway conversations in this worker. The browser compiles wasm
// functions when they are first called and optimises them once they are
// hot, so the chat's own AKE then runs on compiled, optimised code. Each
// step is a task of its own, and the warm-up stops as soon as the chat
// asks for the engine.
function warmUp() {
  const api = globalThis.otrdesk;
  if (!api || started) return;
  /** @type {any[]} */
  let convs = [];
  /** @type {string[]} */
  let bodies = [];
  const steps = [
    () => {
      spare = api.generateKey();
    },
    () => {
      // Throwaway keys on both sides: nothing of the chat's own identity
      // takes part.
      convs = [api.newConversation({ key: api.generateKey() }), api.newConversation({ key: api.generateKey() })];
      bodies = convs[0].query().send;
    },
  ];
  // The query, DH-Commit, DH-Key, Reveal Signature and Signature, each to
  // the other side.
  for (let i = 0; i < 5; i++) {
    steps.push(() => {
      const to = convs[(i + 1) % 2];
      const out = [];
      for (const b of bodies) out.push(...(to.receive(b).send || []));
      bodies = out;
    });
  }
  const next = () => {
    if (started || !steps.length) {
      if (!started) mark('warm');
      return;
    }
    try {
      steps.shift()();
    } catch {
      return; // only a warm-up: the chat's own calls report errors
    }
    setTimeout(next, 0);
  };
  next();
}

async function init(m) {
  try {
    await load(m);
    engine = await bind(m.policy, m.state);
    mark('engine-ready');
    post({ ev: 'ready', restored: false });
  } catch (err) {
    loading = null; // forget a failed load: a later init tries again
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

// deliver turns the engine's Result into events for the page. id: the
// visitor message the bodies carry (a 'send' op), so the page can send those
// very bytes again if the service bounces them.
function deliver(r, id = 0) {
  if (!r) return;
  let send = r.send || [];
  for (const ev of r.events || []) {
    if (ev.type !== 'resent') continue;
    // The engine sends the last message again after the operator's session
    // restarted. That is only ever right to the very session it was first
    // encrypted to; the engine promises it, and this checks it: a resend
    // towards anything else is dropped here.
    const fp = ev.fingerprint ? canon(ev.fingerprint) : lastTo.fingerprint;
    if (!lastTo.instance || ev.instance !== lastTo.instance || fp !== lastTo.fingerprint) {
      send = send.filter((b) => !/^\?OTR:AA[IM]D/.test(b));
      ev.type = 'resend-refused';
    }
  }
  for (const body of send) {
    const step = akeStep(body);
    if (step) mark('send-' + step);
    post(id ? { ev: 'send', body, id } : { ev: 'send', body });
  }
  for (const msg of r.show || []) {
    post({ ev: 'show', text: msg.text, encrypted: !!msg.encrypted, instance: msg.instance || 0, fingerprint: canon(msg.fingerprint) });
  }
  for (const ev of r.events || []) {
    switch (ev.type) {
      case 'secure':
        mark('secure');
        if (akeStart) post({ ev: 'timing', ake: performance.now() - akeStart, akeCPU, init: initMs });
        akeStart = 0;
        post({ ev: 'secure', instance: ev.instance, fingerprint: canon(ev.fingerprint), refreshed: !!ev.refreshed });
        break;
      case 'insecure':
        post({ ev: 'insecure', instance: ev.instance || 0 });
        break;
      case 'resent':
        post({ ev: 'resent', instance: ev.instance, fingerprint: lastTo.fingerprint });
        break;
      case 'resend-refused':
        post({ ev: 'error', message: 'The operator\u2019s side asked for your last message again under another key; it was not sent again.' });
        break;
      case 'peer-error':
        // The words come from the other side: the page shows them as such.
        post({ ev: 'peer-error', message: String(ev.message || '') });
        break;
      case 'unencrypted':
      case 'error':
        if (ev.message) post({ ev: 'error', message: ev.message });
        break;
      default:
    }
  }
  if (r.error && !r.notSent) post({ ev: 'error', message: 'A message could not be handled securely (' + String(r.error).replace(/^otr: /, '') + ').' });
}

// canon is a fingerprint as 40 upper-case hex digits ('' for none).
function canon(fp) {
  const s = String(fp || '').replace(/[\s:]/g, '').toUpperCase();
  return /^[0-9A-F]{40}$/.test(s) ? s : '';
}

// The session the last message was encrypted to, in this conversation.
let lastTo = { instance: 0, fingerprint: '' };

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
    if (!key) key = spare || api.generateKey();
    spare = '';
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
      lastTo = { instance: 0, fingerprint: '' };
    },
    query: () => conv.query(),
    sendTo: (instance, fingerprint, text) => {
      const r = conv.sendTo(instance, fingerprint, text);
      if (r && !r.notSent && !r.error) lastTo = { instance, fingerprint: canon(fingerprint) };
      return r;
    },
    receive: (body) => conv.receive(body),
    end: () => conv.end(),
  };
}
