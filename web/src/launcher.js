// @ts-check
// The otrdesk launcher, served as /widget.js.
//
// It draws one button and loads nothing until a visitor shows interest in
// it. On the first click it fetches /skins/<name>.json and loads the chat
// bundle (assets/chat-<hash>.js) with a script tag carrying its sha384
// integrity, so that SRI on this file covers everything it loads. The chat
// bundle in turn loads the OTR worker and wasm module and checks their
// hashes the same way (see otr.js).
//
// A pointer over the button, or keyboard focus on it, says a click may
// follow: the launcher then does the same loads ahead of it (skin JSON,
// chat bundle, and the worker with its compiled wasm module), so the click
// finds them ready. Nothing is sent to the chat server before the click.
//
// The steps of opening a chat are performance marks "otrdesk:<step>" (click,
// skin, chat-loaded, mounted here; the others in otr.js and worker.js).
//
// Embedding: <script src="https://chat.example.org/widget.js" data-skin="demo"
// data-fingerprint="XXXXXXXX XXXXXXXX ..."></script>, in the page DOM or inside
// an open shadow root. No iframe, no eval, no inline script or style: styles go
// through a constructed stylesheet, so a strict CSP such as
// script-src https://chat.example.org 'wasm-unsafe-eval'; worker-src blob:
// is enough.
//
// ASSETS is replaced at build time (build.mjs) with the content-hashed file
// names and integrity values of the chat bundle, worker and wasm module.

/* global __OTRDESK_ASSETS__ */
const ASSETS = __OTRDESK_ASSETS__;
const STORE_PREFIX = 'otrdesk:';
// A skin JSON fetched on hover is used by a click within this time; later
// the click fetches it again (availability and keys may have changed).
const SKIN_FRESH_MS = 30000;

const mark = (name) => {
  try {
    performance.mark('otrdesk:' + name);
  } catch {
    // marks are for measuring only
  }
};

const CSS = `
:host{all:initial}
.l{position:fixed;right:16px;bottom:16px;z-index:2147483000;font:16px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.b{min-height:48px;padding:0 20px;border:0;border-radius:24px;background:var(--otrdesk-accent,#1b5e9f);color:#fff;font:inherit;font-weight:600;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3)}
.b:focus-visible{outline:3px solid #000;outline-offset:2px;box-shadow:0 0 0 5px #fff}
.b[aria-busy=true]{opacity:.8;cursor:progress}
.e{margin:0 0 8px;padding:8px 12px;max-width:280px;background:#fff;color:#8a1111;border:1px solid #8a1111;border-radius:8px}
`;

function findScript() {
  const cur = document.currentScript;
  if (cur && cur.dataset.skin !== undefined) return cur;
  // document.currentScript is null for a script inside a shadow root: look
  // for our script tag in the document and in every open shadow root.
  const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    for (const s of roots[i].querySelectorAll('script[data-skin]')) {
      if (/\/widget(-[0-9a-f]+)?\.js(\?|#|$)/.test(s.src) && !s.otrdeskSeen) return s;
    }
    for (const el of roots[i].querySelectorAll('*')) if (el.shadowRoot) roots.push(el.shadowRoot);
  }
  return null;
}

function storeGet(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null; // storage disabled: the chat just won't survive a reload
  }
}

function start(script) {
  script.otrdeskSeen = true;
  const skin = script.dataset.skin || '';
  // The pins, as the page wrote them (null when absent): an attribute that
  // is present but unreadable must not read as "no pin" (see pins.js).
  const pinAttr = script.getAttribute('data-fingerprint');
  const signerAttr = script.getAttribute('data-signer');
  const base = new URL('.', script.src).href;

  const host = document.createElement('div');
  host.setAttribute('data-otrdesk', skin);
  const root = host.attachShadow({ mode: 'open' });
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  root.adoptedStyleSheets = [sheet];

  const wrap = document.createElement('div');
  wrap.className = 'l';
  const err = document.createElement('p');
  err.className = 'e';
  err.setAttribute('role', 'alert');
  err.hidden = true;
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'b';
  const label = script.dataset.label || 'Chat with us';
  btn.textContent = label;
  btn.setAttribute('aria-haspopup', 'dialog');
  btn.setAttribute('aria-expanded', 'false');
  wrap.append(err, btn);
  root.append(wrap);

  // Place the widget next to its script, in the same tree (document or
  // shadow root); a script in <head> puts it at the end of <body>.
  const place = () => {
    const parent = script.parentNode;
    if (parent && parent !== document.head && parent.nodeName !== 'HEAD') parent.insertBefore(host, script.nextSibling);
    else document.body.append(host);
  };
  if (document.body || script.getRootNode() !== document) place();
  else document.addEventListener('DOMContentLoaded', place, { once: true });

  let chat = null; // the mounted chat, once loaded
  let opening = null;
  /** @type {{at: number, p: Promise<any>} | null} */
  let early = null; // the skin JSON, fetched on hover or focus

  const skinInfo = () => {
    if (early && Date.now() - early.at < SKIN_FRESH_MS) {
      const p = early.p;
      early = null; // used once: a new chat reads it again
      return p;
    }
    early = null;
    return fetchSkin(base, skin);
  };

  // warm loads ahead of a likely click what the click would load.
  const warm = () => {
    if (chat || opening || early) return;
    const p = fetchSkin(base, skin);
    early = { at: Date.now(), p };
    p.catch(() => {
      early = null; // the click tries again and says what went wrong
    });
    Promise.all([p, loadChat(base)])
      .then(([info, api]) => warmEngine(api, info))
      .catch(() => {}); // the click reports any failure
  };
  const warmEngine = (api, info) => {
    // A plaintext chat needs no engine, unless the page pins a key.
    const plain = info && info.policy === 'plaintext' && pinAttr === null && signerAttr === null;
    if (!plain && api.warm) api.warm(base, ASSETS).catch(() => {});
  };
  btn.addEventListener('pointerenter', warm);
  btn.addEventListener('focus', warm);

  const fail = (message) => {
    err.textContent = message;
    err.hidden = false;
    btn.removeAttribute('aria-busy');
    btn.textContent = 'Try again';
  };

  const open = () => {
    if (chat) {
      chat.show();
      return;
    }
    if (opening) return;
    mark('click');
    err.hidden = true;
    btn.setAttribute('aria-busy', 'true');
    btn.textContent = 'Opening chat…';
    const info = skinInfo();
    info.then(() => mark('skin'), () => {});
    opening = Promise.all([info, loadChat(base)])
      .then(([info, api]) => {
        warmEngine(api, info);
        chat = api.mount({ root, host, wrap, launcher: btn, label, skin: info, skinName: skin, pinAttr, signerAttr, base, assets: ASSETS, storePrefix: STORE_PREFIX });
        btn.removeAttribute('aria-busy');
        mark('mounted');
      })
      .catch((e) => fail(e && e.userMessage ? e.userMessage : 'The chat could not be opened. Please check your connection and try again.'))
      .finally(() => {
        opening = null;
      });
  };
  btn.addEventListener('click', open);

  // A chat that was running before a reload or a navigation within the site
  // comes back at once.
  if (storeGet(STORE_PREFIX + skin)) open();
}

function userError(message) {
  const e = new Error(message);
  e.userMessage = message;
  return e;
}

async function fetchSkin(base, skin) {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(skin)) throw userError('This chat is not set up correctly (the page names no valid chat).');
  let res;
  try {
    res = await fetch(base + 'skins/' + skin + '.json', { credentials: 'omit', cache: 'no-store' });
  } catch {
    throw userError('The chat service cannot be reached. Please check your connection and try again.');
  }
  if (res.status === 404) throw userError('This chat does not exist (any more).');
  if (!res.ok) throw userError('The chat service is not available right now (HTTP ' + res.status + '). Please try again later.');
  return res.json();
}

function loadChat(base) {
  const w = window;
  if (!w.__otrdeskChatLoad) {
    w.__otrdeskChatLoad = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = base + 'assets/' + ASSETS.chat.file;
      s.integrity = ASSETS.chat.integrity;
      s.crossOrigin = 'anonymous';
      s.async = true;
      s.onload = () => {
        mark('chat-loaded');
        if (w.__otrdeskChat) resolve(w.__otrdeskChat);
        else reject(userError('The chat could not be started.'));
      };
      s.onerror = () => {
        w.__otrdeskChatLoad = null;
        reject(userError('The chat program could not be loaded or failed its integrity check. Please try again later.'));
      };
      document.head.append(s);
    });
  }
  return w.__otrdeskChatLoad;
}

const script = findScript();
if (script) start(script);
