// @ts-check
// The otrdesk chat, loaded by the launcher on the first click.
//
// Flow:
//
//	launcher click -> mount(ctx) -> panel drawn in the launcher's shadow root
//	  -> OTR worker started (otr.js: worker + wasm fetched with integrity)
//	  -> BOSH login with SASL ANONYMOUS on skin.anonymous_domain (Strophe.js),
//	     or attach to the session cached in sessionStorage after a reload
//	  -> OTR query to <skin>@D (not for policy "plaintext"); the component
//	     holds it while the chat is queued and hands it to the operator
//	  -> the operator's client starts the AKE; the worker completes it and
//	     reports the operator's instance and fingerprint
//	  -> exactly one security sentence is shown, in an ARIA live region.
//
// Every security decision — which sentence, where typed text may go, what
// is held, what the transcript must say — is made by trust.js, a pure state
// machine; this file only wires it to Strophe, the worker and the DOM.
// Everything the service sends (skin title and greeting, operator names,
// bodies, OTR error texts) passes speak.js before it is shown, so none of
// it can read like the widget's own security line.
//
// Messages from <skin>@D carry the operator's bodies (relayed by the
// component), chat states (XEP-0085) and otrdesk's control channel
// <status xmlns='urn:otrdesk:0' state='queued|assigned|transferred|ended'/>.
// The visitor ends a chat with an OTR disconnect and <end xmlns='urn:otrdesk:0'/>.
//
// OMEMO, beside OTR: only on a page that trusts an OMEMO key (a pinned
// one, one in the signer's keyring, or on an unpinned page one the skin
// lists) does the widget load the OMEMO engine (omemo.js, a second worker
// and wasm module; pages that cannot use it never fetch them). It then
// hands the visitor's device list and bundle to the skin on every login,
// before anything else, and an assignment with e2ee='omemo' makes the
// round an OMEMO one: the widget reads the operator's devices from the
// skin, and trust.js decides which of them may be written to. An OMEMO
// session survives a reload (the engine's state is saved before each
// message it encrypted is sent, so a reload never encrypts with a key
// already used).
//
// Every stanza the widget sends has an id. The chat service can be away
// for a while (restarting) while the XMPP session stays up: the server then
// bounces what is sent to it, with that id. outbox.js keeps the bytes of
// each stanza carrying the visitor's words until a ping (XEP-0199) sent
// after it is answered by the service, and sends the very same bytes again
// once the service answers again; the visitor sees each message's state in
// words ("Not delivered yet — will be sent again when the chat service is
// back").
//
// When the XMPP session itself is gone (a network drop longer than the
// BOSH timeout, a laptop that slept), the widget logs in again and first
// presents the chat's resumption secret (resume.js): the service moves the
// same chat, with the same operator, to the new address, and a fresh AKE
// starts. A refused secret means a new chat, and the visitor is told.
//
// What survives a reload or a navigation within the site lives in
// sessionStorage under "otrdesk:<skin>": the transcript, the chat's state,
// its resumption secret and the visitor's OTR key as the worker exports
// it, and the OMEMO device with its sessions (never in localStorage: it is
// good for this tab only); Strophe keeps the BOSH
// tokens itself ("strophe-bosh-session"). The transcript download is made in
// the browser from that memory; nothing is sent anywhere.

import { Strophe, $msg, $iq } from 'strophe.js';
import * as S from './strings.js';
import { CSS } from './style.js';
import { startOTR, warmOTR, mark } from './otr.js';
import { startOMEMO } from './omemo.js';
import * as OX from './omemo-xmpp.js';
import { Trust, NOTES, describe } from './trust.js';
import { Outbox, AWAY } from './outbox.js';
import { Resume } from './resume.js';
import { Admission, readChallenge, solve } from './pow.js';
import { Screen, neutral, REMOVED } from './speak.js';
import { parseSigner, verifyKeyring, sentence as keyringProblem } from './keyring.js';

Strophe.setLogLevel(Strophe.LogLevel.WARN);

const NS_OTRDESK = 'urn:otrdesk:0';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';
const NS_HINTS = 'urn:xmpp:hints';
const NS_CARBONS = 'urn:xmpp:carbons:2';
const PAUSED_AFTER_MS = 5000;
// The OTR query for versions 2 and 3, as the engine writes it for the
// "require" and "opportunistic" policies (Protocol-v3, "Query Messages").
const OTR_QUERY = '?OTRv23?';
const MAX_BACKOFF_MS = 30000;
const NS_PING = 'urn:xmpp:ping';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
// A ping unanswered this long counts as bounced (the connection is likely gone).
const PING_TIMEOUT_MS = 20000;
// How long the login waits for the OMEMO engine (and a signer's keyring).
const OMEMO_WAIT_MS = 15000;

// The words next to a message that did not come from the session the
// security line describes.
const MARKS = {
  unencrypted: '(unencrypted) ',
  'other-session': '(not from the encrypted session described at the top) ',
  'peer-error': "(an error reported by the operator's side) ",
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** @param {unknown} v */
const arr = (v) => (Array.isArray(v) ? v : []);

// keyTitle names the key(s) of a session, for a tooltip.
const keyTitle = (s) => (s.omemo ? "Operator's keys: " : "Operator's key: ") + describe(s);

function storage() {
  try {
    const s = window.sessionStorage;
    s.getItem('x');
    return s;
  } catch {
    return null;
  }
}

const ERROR_WORDS = {
  'service-unavailable': 'The chat service is not available right now. Please try again later.',
  'resource-constraint': 'Too many visitors are waiting right now. Please try again later.',
  'policy-violation': 'That message was not accepted: it is too long or was sent too quickly.',
  'item-not-found': 'This chat does not exist (any more).',
  'not-acceptable': 'That message was not accepted.',
  'internal-server-error': 'The chat service had a problem. Please try again.',
  'remote-server-not-found': 'The chat service cannot be reached right now.',
  'remote-server-timeout': 'The chat service cannot be reached right now.',
};

class Chat {
  constructor(ctx) {
    this.ctx = ctx;
    this.skin = ctx.skin;
    this.jid = String(this.skin.jid || '').toLowerCase();
    // data-signer pins the admin's signing key: the skin's keyring is then
    // trusted once its signature, skin, expiry and serial check out.
    const signer = ctx.signerAttr == null ? null : parseSigner(ctx.signerAttr);
    this.signerKey = signer && signer.ok ? signer.key : null;
    this.trust = new Trust({
      skinPolicy: this.skin.policy,
      // On an unpinned page the skin JSON vouches for keys of both kinds.
      skinFingerprints: [...arr(this.skin.fingerprints), ...arr(this.skin.omemo_fingerprints)],
      fingerprintAttr: ctx.pinAttr ?? null,
      signer: signer ? { ok: signer.ok } : null,
    });
    this.policy = this.trust.policy; // "require" on a pinned page, whatever the skin says
    this.screen = new Screen(); // the service's strings, in the order they are shown
    this.store = storage();
    // The page's data-skin names the chat; the skin JSON's own name is the service's word.
    this.name = String(ctx.skinName || this.skin.name || '');
    this.key = ctx.storePrefix + this.name;

    // Chat state; the persisted part is saved after every change.
    this.saved = this.load() || { v: 2, transcript: [], operator: '', otr: null, ended: false };
    this.restoring = !!this.load() && !this.saved.ended;
    // A message that had not gone out when the page went away did not go:
    // the engine cannot carry a running OTR session across a page load.
    // Nor can a message waiting for the service be sent again: its bytes
    // were kept in memory only.
    for (const m of this.saved.transcript) if (m.state === 'held' || m.state === 'sending' || m.state === 'pending') m.state = 'dropped';

    this.conn = null;
    this.connected = false; // the XMPP session is up (connected or attached)
    this.hadSession = false;
    this.otr = null; // the worker, once started
    this.otrReady = null; // promise of the worker
    this.omemo = null; // the OMEMO engine's client, once it runs
    /** @type {Promise<unknown>|null} settles when it is known whether OMEMO runs; null once it did */
    this.omemoGate = null;
    /** @type {{device: number, list: string, bundle: string}|null} */
    this.omemoKeys = null;
    this.omemoHanded = false; // the keys went to the skin in this XMPP session
    /** @type {Map<number, {li: HTMLElement, m: any}>} the visitor's messages by trust id */
    this.mine = new Map();
    this.confirmFor = null; // the session the confirm button was offered for
    this.ending = false;
    this.composing = false;
    this.pausedTimer = 0;
    this.backoff = 1000;
    this.reconnectTimer = 0;
    this.outbox = new Outbox(); // what the service is known to have
    this.probeTimer = 0; // the outbox's next ping
    this.lastSid = 0; // stanza ids: 'w' + a counter, pings 'p' + one
    this.akeBounced = false; // the service went away while no session was up
    this.resumer = new Resume(this.saved.resume || '');
    this.resumeSid = ''; // the resume request waiting for its answer
    this.resumeAgain = false; // it bounced: the service was away
    // Bodies sent before the service took the chat (no status yet in this
    // session), by stanza id: a proof-of-work challenge asks for one again.
    this.opening = new Map();
    this.taken = false; // the service sent a status in this session
    this.admission = new Admission();
    this.draw();
  }

  // ---- persistence ----

  load() {
    if (!this.store) return null;
    try {
      const v = JSON.parse(this.store.getItem(this.key) || 'null');
      // Version 2 marks which transcript lines hold the service's words
      // (shown through the screen); an older transcript is not shown again.
      return v && v.v === 2 ? v : null;
    } catch {
      return null;
    }
  }

  save() {
    if (!this.store) return;
    try {
      if (this.saved.ended) this.store.removeItem(this.key);
      else this.store.setItem(this.key, JSON.stringify(this.saved));
    } catch {
      // Quota or disabled storage: the chat goes on, it just won't survive a reload.
    }
  }

  // ---- drawing ----

  draw() {
    const { root, host, launcher } = this.ctx;
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [...root.adoptedStyleSheets, sheet];
    if (/^#[0-9a-fA-F]{6}$/.test(this.skin.color || '')) host.style.setProperty('--otrdesk-accent', this.skin.color);

    const p = el('section', 'p');
    p.id = 'otrdesk-panel';
    p.setAttribute('role', 'dialog');
    // The skin's title is the service's words: checked like any of them.
    const titleText = this.screen.next(String(this.skin.title || '')) || 'Chat';
    p.setAttribute('aria-label', titleText === REMOVED ? 'Chat' : titleText);
    const h = el('div', 'h');
    const title = el('h2', '', titleText);
    const min = el('button', 'min', '–');
    min.type = 'button';
    min.setAttribute('aria-label', 'Minimise chat');
    min.addEventListener('click', () => this.hide());
    h.append(title, min);

    // The widget's own line: an icon and colours the skin cannot set (its
    // only style is the accent colour, used elsewhere), and the text is
    // replaced wholesale, so no other sentence remains anywhere.
    this.securityEl = el('p', 's');
    this.securityEl.setAttribute('role', 'status');
    this.securityEl.setAttribute('aria-live', 'polite');
    this.confirmEl = el('div', 'c');
    this.confirmEl.hidden = true;
    this.confirmBtn = el('button', 'confirm', S.CONFIRM);
    this.confirmBtn.type = 'button';
    this.confirmBtn.addEventListener('click', () => this.confirm());
    this.confirmEl.append(this.confirmBtn);
    this.statusEl = el('p', 'q');
    this.statusEl.setAttribute('aria-live', 'polite');
    this.errorEl = el('p', 'e');
    this.errorEl.setAttribute('role', 'alert');
    this.errorEl.hidden = true;

    // The transcript: a live region (role log) holding a list. The role
    // sits on a wrapper so the list keeps its own semantics: a role on the
    // <ol> itself would leave every <li> outside any list.
    this.log = el('div', 'm');
    this.log.setAttribute('role', 'log');
    this.log.setAttribute('aria-live', 'polite');
    this.log.setAttribute('aria-label', 'Messages');
    this.log.tabIndex = 0;
    this.list = el('ol');
    this.log.append(this.list);

    const form = el('form', 'f');
    form.noValidate = true;
    const label = el('label', 'sr', 'Your message');
    label.htmlFor = 'otrdesk-input';
    this.input = el('textarea');
    this.input.id = 'otrdesk-input';
    this.input.rows = 1;
    this.input.placeholder = 'Write a message…';
    this.input.autocomplete = 'off';
    this.input.setAttribute('enterkeyhint', 'send');
    this.sendBtn = el('button', 'send', 'Send');
    this.sendBtn.type = 'submit';
    form.append(label, this.input, this.sendBtn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    });
    // Some input paths deliver Enter's character as a separate keypress
    // (DevTools, some IMEs): it must not leave a line break behind.
    this.input.addEventListener('keypress', (e) => {
      if (e.key === 'Enter' && !e.shiftKey) e.preventDefault();
    });
    this.input.addEventListener('input', () => {
      this.grow();
      this.typing();
    });

    const actions = el('div', 'a');
    this.transcriptBtn = el('button', 'transcript', 'Download transcript');
    this.transcriptBtn.type = 'button';
    this.transcriptBtn.addEventListener('click', () => this.download());
    this.endBtn = el('button', 'end', 'End chat');
    this.endBtn.type = 'button';
    this.endBtn.addEventListener('click', () => this.end());
    this.newBtn = el('button', 'new', 'Start a new chat');
    this.newBtn.type = 'button';
    this.newBtn.hidden = true;
    this.newBtn.addEventListener('click', () => this.restart());
    actions.append(this.transcriptBtn, this.endBtn, this.newBtn);

    p.append(h, this.securityEl, this.confirmEl, this.statusEl, this.errorEl, this.log, form, actions);
    p.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        this.hide();
      }
    });
    this.panel = p;
    root.append(p);
    launcher.setAttribute('aria-controls', p.id);
    launcher.setAttribute('aria-expanded', 'true');
    launcher.textContent = 'Hide chat';

    if (this.skin.greeting) {
      // The greeting is the website's words, shown as a quote from it.
      const g = el('li', 'greet');
      g.append(el('span', 'who', S.FROM_WEBSITE), el('q', '', this.screen.next(String(this.skin.greeting))));
      this.list.append(g);
    }
    for (const m of this.saved.transcript) this.render(m);
    this.showSecurity();
    this.setStatus(this.saved.operator ? 'You are chatting with ' + this.saved.operator + '.' : '');
    this.input.focus();
  }

  show() {
    if (!this.panel.hidden) {
      this.hide();
      return;
    }
    this.panel.hidden = false;
    this.ctx.launcher.setAttribute('aria-expanded', 'true');
    this.ctx.launcher.textContent = 'Hide chat';
    this.input.focus();
  }

  hide() {
    this.panel.hidden = true;
    this.ctx.launcher.setAttribute('aria-expanded', 'false');
    this.ctx.launcher.textContent = this.ctx.label || 'Chat with us';
    this.ctx.launcher.focus();
  }

  // showSecurity writes exactly one sentence for the chat's state, as
  // trust.js decides it, and offers the choice to write to an unverified
  // operator when that is what holds the visitor's messages.
  showSecurity() {
    const s = this.trust.sentence();
    const text = {
      verified: S.VERIFIED,
      unverified: S.UNVERIFIED,
      plaintext: S.PLAINTEXT,
      ended: S.ENDED, // no session: neither encrypted nor not, just over
      misconfigured: S.MISCONFIGURED,
      pending: S.STARTING,
    }[s];
    this.securityEl.dataset.state = s === 'ended' ? 'pending' : s;
    if (this.securityEl.textContent !== text) this.securityEl.textContent = text;
    const latest = this.trust.latest;
    if ((s === 'unverified' || s === 'misconfigured') && latest) {
      this.securityEl.title = keyTitle(latest);
    } else {
      this.securityEl.removeAttribute('title');
    }
    const ask = this.trust.needsConfirm();
    this.confirmFor = ask ? latest : null;
    if (this.confirmEl.hidden === ask) {
      this.confirmEl.hidden = !ask;
      this.confirmBtn.title = ask && latest ? keyTitle(latest) : '';
    }
    for (const { li, m } of this.mine.values()) this.markMine(li, m.state, m.late);
  }

  setStatus(text) {
    this.statusEl.textContent = text;
  }

  error(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = !text;
  }

  // opName is the operator's display name as the service sends it, or
  // "Operator" when it reads like a security sentence.
  opName(name) {
    const n = String(name || '').trim();
    return !n || neutral(n) === REMOVED ? 'Operator' : n;
  }

  // render draws one transcript entry. The widget's own notes are shown as
  // they are; everything that came from the service goes through the screen.
  render(m) {
    const li = el('li', m.dir);
    if (m.dir === 'note' && !m.svc) {
      this.screen.gap();
      li.textContent = m.text;
    } else if (m.dir === 'note') {
      li.textContent = this.screen.next(m.text);
    } else if (m.dir === 'me') {
      this.screen.gap();
      li.append(el('span', 'who', 'You'), document.createTextNode(m.text));
      this.markMine(li, m.state, m.late);
    } else {
      const who = this.screen.next(m.who || 'Operator');
      li.append(el('span', 'who', who === REMOVED ? 'Operator' : who));
      if (m.mark && MARKS[m.mark]) {
        li.dataset.mark = m.mark;
        li.append(el('span', 'mark', MARKS[m.mark]));
      }
      li.append(document.createTextNode(this.screen.next(m.text)));
    }
    this.list.append(li);
    this.log.scrollTop = this.log.scrollHeight;
    return li;
  }

  // markMine shows how one of the visitor's messages stands.
  // late: it was delivered after the service came back.
  markMine(li, state, late = false) {
    li.dataset.state = state || 'sent';
    let words = '';
    if (state === 'held' || state === 'sending' || state === 'pending') {
      li.dataset.pending = 'true';
      // (sending lasts milliseconds: no words, nothing for a screen reader to read out)
      if (state === 'held') words = this.trust.needsConfirm() ? 'Not sent: waiting for your choice above' : 'Not sent yet: waiting for encryption';
      if (state === 'pending') words = S.MSG_PENDING;
    } else {
      delete li.dataset.pending;
      if (state === 'dropped') words = 'Not sent';
      else if (state === 'failed') words = S.MSG_FAILED;
      else if (state === 'unconfirmed') words = S.MSG_UNCONFIRMED;
      else if (state === 'delivered' && late) words = S.MSG_DELIVERED_LATE;
    }
    // Said in words on the message itself, not only by its colour.
    let st = li.querySelector('.st');
    if (!words) {
      if (st) st.remove();
      return;
    }
    if (!st) {
      st = el('span', 'st');
      li.append(st);
    }
    if (st.textContent !== words) st.textContent = words;
  }

  add(dir, text, extra) {
    const m = { t: Date.now(), dir, text, who: '', ...extra };
    if (dir !== 'note' || text) {
      this.saved.transcript.push(m);
      this.save();
    }
    return { li: this.render(m), m };
  }

  // note adds the widget's own words to the transcript; svc: they include
  // a string from the service (an operator name).
  note(text, svc = false) {
    return this.add('note', text, svc ? { svc: true } : {}).li;
  }

  // apply does what trust.js decided.
  apply(o) {
    for (const n of o.notes) this.note(n);
    if (o.fresh) this.freshAKE();
    for (const m of o.send) {
      if (m.omemo) this.sendOMEMO(m);
      else this.toWorker((otr) => otr.send(this.trust.round, m.id, m.text, m.instance, m.fingerprint));
    }
    for (const m of o.plain) this.track(this.xmpp(m.text, 'active'), m.id, m.text, this.trust.round);
    for (const st of o.status) {
      const e = this.mine.get(st.id);
      if (!e) continue;
      e.m.state = st.state;
      this.markMine(e.li, st.state);
      if (st.state === 'dropped') this.mine.delete(st.id);
    }
    if (o.status.length) this.save();
    if (o.send.length) this.xmpp(null, 'active');
    this.showSecurity();
  }

  // track hands the outbox a stanza (sid) that carries visitor message id.
  track(sid, id, body, round) {
    if (!sid) {
      // It never left: there was no connection.
      this.delivery({ status: [{ id, state: 'failed' }], resend: [], probeIn: null, down: null });
      return;
    }
    this.delivery(this.outbox.sent(sid, id, body, round));
  }

  // delivery does what outbox.js decided.
  delivery(a) {
    for (const st of a.status) {
      const e = this.mine.get(st.id);
      if (!e) continue;
      e.m.state = st.state;
      e.m.late = !!st.late;
      this.markMine(e.li, e.m.state, e.m.late);
      if (st.state !== 'pending') this.mine.delete(st.id);
    }
    if (a.status.length) this.save();
    for (const r of a.resend) this.sendAgain(r.sid, r.body);
    if (a.probeIn !== null) {
      clearTimeout(this.probeTimer);
      this.probeTimer = setTimeout(() => this.ping(), a.probeIn);
    }
    if (a.down === true) {
      this.error(S.SERVICE_AWAY);
      this.akeBounced = !this.trust.latest;
    } else if (a.down === false) {
      this.error('');
      if (this.resumeAgain && this.conn && this.connected) {
        // The service was away when the secret went: again, first.
        this.resumeAgain = false;
        const secret = this.resumer.login({ started: !!this.saved.started, ended: !!this.saved.ended });
        if (secret) this.askResume(secret);
      }
      if (this.akeBounced) {
        this.akeBounced = false;
        this.apply(this.trust.serviceBack());
      }
    }
  }

  // ping asks the service whether it is there; its answer also says that
  // everything sent before it reached the service (see outbox.js).
  ping() {
    this.probeTimer = 0;
    const conn = this.conn;
    if (!conn || !this.connected) return;
    const pid = 'p' + ++this.lastSid;
    this.outbox.probe(pid);
    conn.sendIQ(
      $iq({ to: this.jid, type: 'get', id: pid }).c('ping', { xmlns: NS_PING }),
      () => conn === this.conn && this.delivery(this.outbox.answered(pid, this.trust.round)),
      () => conn === this.conn && this.delivery(this.outbox.probeFailed(pid)),
      PING_TIMEOUT_MS,
    );
    this.flushSoon();
  }

  // sendAgain sends bytes the service bounced, as they were: the OTR
  // ciphertext made for one session, never encrypted again.
  sendAgain(sid, body) {
    if (!this.conn || !this.connected) return;
    if (body.startsWith('<')) {
      this.sendEncrypted(sid, body); // an <encrypted/> element
      return;
    }
    const m = $msg({ to: this.jid, type: 'chat', id: sid }).c('body').t(body).up();
    if (body.startsWith('?OTR')) this.hints(m);
    this.conn.send(m);
    this.flushSoon();
  }

  // toWorker runs f with the worker once it is up, keeping the order of calls.
  toWorker(f) {
    if (this.otr) f(this.otr);
    else if (this.otrReady) this.otrReady.then((otr) => otr && f(otr));
  }

  // ---- start ----

  start() {
    if (this.trust.misconfigured) this.note(NOTES.misconfigured);
    const keyring = this.signerKey ? this.loadKeyring() : null;
    if (this.policy !== 'plaintext') this.startWorker();
    this.planOMEMO(keyring);
    if (!this.restoring && this.skin.available === false) {
      this.offline();
      return;
    }
    this.connect(this.restoring);
  }

  offline() {
    this.setStatus(S.OFFLINE);
    this.input.disabled = true;
    this.sendBtn.disabled = true;
    this.endBtn.hidden = true;
    this.newBtn.hidden = false;
    this.newBtn.textContent = 'Try again';
  }

  startWorker() {
    this.otrReady = startOTR({
      base: this.ctx.base,
      assets: this.ctx.assets,
      policy: this.policy,
      state: this.saved.otr,
      onEvent: (ev) => this.onOTR(ev),
    }).then(
      (otr) => {
        this.otr = otr;
        return otr;
      },
      (e) => {
        this.otr = null;
        const o = this.trust.engineFailed();
        if (this.trust.sentence() === 'plaintext') {
          this.note('Encryption could not be started in this browser (' + e.message + ').');
        } else {
          this.error('Encryption could not be started in this browser (' + e.message + '), so this chat cannot be used. Please try another browser.');
          this.input.disabled = true;
          this.sendBtn.disabled = true;
        }
        this.apply(o);
        return null;
      },
    );
  }

  // planOMEMO starts the OMEMO engine when the page can trust an OMEMO key:
  // at once for pins and the skin JSON, once the keyring is verified for a
  // signer pin. Until that is known, logging in waits (omemoGate): the
  // visitor's keys must reach the skin before the chat opens.
  planOMEMO(keyring) {
    if (this.policy === 'plaintext' || !this.ctx.assets || !this.ctx.assets.omemoWasm) return;
    const go = () => (this.trust.omemoPossible() ? this.startOMEMO() : null);
    const gate = keyring ? keyring.then(go, go) : Promise.resolve(go());
    // A keyring or an engine that never arrives must not keep the visitor
    // from chatting: after a while the chat starts without OMEMO (OTR).
    this.omemoGate = Promise.race([gate, new Promise((resolve) => setTimeout(resolve, OMEMO_WAIT_MS))]);
  }

  startOMEMO() {
    mark('omemo-start');
    const client = startOMEMO(this.ctx.assets, this.ctx.base);
    return client.init(this.saved.omemo || null).then(
      (r) => {
        mark('omemo-ready');
        this.omemo = client;
        this.omemoKeys = { device: r.device, list: r.list, bundle: r.bundle };
        this.saved.omemo = r.state;
        this.save();
        return client;
      },
      (e) => {
        client.terminate();
        this.note('OMEMO encryption could not be started in this browser (' + neutral(String((e && e.message) || e)) + '); only OTR can be used.');
        return null;
      },
    );
  }

  // ---- OMEMO ----

  // handKeys gives the skin the visitor's OMEMO keys for this XMPP session.
  handKeys() {
    this.omemoHanded = false;
    if (!this.omemo || !this.omemoKeys || !this.conn || !this.connected) return;
    const conn = this.conn;
    OX.handKeys(conn, this.jid, this.omemoKeys).catch(() => {
      if (conn === this.conn) this.omemoHanded = false;
    });
    this.omemoHanded = true;
    this.flushSoon();
  }

  // readDevices reads the operator's devices for an OMEMO round and tells
  // trust.js; each bundle goes through the engine, which checks it and
  // pins its key to the device.
  readDevices(round) {
    const conn = this.conn;
    const omemo = this.omemo;
    if (!conn || !this.connected || !omemo) {
      this.apply(this.trust.engine({ ev: 'omemo-devices', round, devices: [] }));
      return;
    }
    mark('omemo-devices-ask');
    const peer = (device, bundle) => omemo.peer(this.jid, device, bundle).then((r) => r.fingerprint);
    OX.readDevices(conn, this.jid, peer, () => this.flushSoon())
      .catch(() => ({ devices: [], refused: 0 }))
      .then((r) => {
        if (conn !== this.conn || round !== this.trust.round) return;
        mark('omemo-devices');
        this.apply(this.trust.engine({ ev: 'omemo-devices', round, devices: r.devices }));
      });
  }

  // sendOMEMO encrypts one of the visitor's messages to exactly the devices
  // trust.js named. The engine's new state is saved before the stanza
  // leaves, so a reload can never encrypt again with a key already used.
  sendOMEMO(m) {
    const round = this.trust.round;
    const omemo = this.omemo;
    const fail = () => this.apply(this.trust.engine({ ev: 'not-sent', round, id: m.id }));
    if (!omemo) return fail();
    const to = m.devices.map((d) => ({ jid: this.jid, device: d.device, fingerprint: d.fingerprint }));
    omemo.encrypt(m.text, to).then((r) => {
      this.saved.omemo = r.state;
      this.save();
      this.track(this.xmppEncrypted(r.xml), m.id, r.xml, round);
      this.apply(this.trust.engine({ ev: 'sent', round, id: m.id }));
    }, fail);
  }

  // xmppEncrypted sends an <encrypted/> element to the skin; its stanza id,
  // or '' without a connection.
  xmppEncrypted(xml) {
    if (!this.conn || !this.connected) return '';
    const sid = 'w' + ++this.lastSid;
    this.sendEncrypted(sid, xml);
    return sid;
  }

  sendEncrypted(sid, xml) {
    this.conn.send(OX.message(this.jid, sid, xml));
    this.flushSoon();
  }

  // onEncrypted decrypts an OMEMO message from the skin. Its fallback body
  // is never shown.
  onEncrypted(enc) {
    const round = this.trust.round;
    if (!this.omemo) {
      this.add('them', 'An OMEMO encrypted message arrived, which this page cannot read.', { who: this.saved.operator, mark: 'unencrypted' });
      return;
    }
    const conn = this.conn;
    this.omemo.decrypt(this.jid, OX.serialize(enc)).then(
      (r) => {
        this.saved.omemo = r.state;
        this.save();
        if (r.bundle && conn === this.conn && this.omemoKeys) {
          // A one-time prekey was used: the skin gets the bundle that replaces it.
          this.omemoKeys.bundle = r.bundle;
          OX.republish(conn, this.jid, this.omemoKeys.device, r.bundle).catch(() => {});
          this.flushSoon();
        }
        if (r.text === null || r.text === undefined) return; // key transport
        const o = this.trust.engine({ ev: 'show', omemo: true, encrypted: true, round, text: r.text, device: r.device, fingerprint: r.fingerprint });
        if (o.show) this.add('them', o.show.text, { who: this.saved.operator, mark: o.show.mark });
        this.apply(o);
      },
      () => this.note('An encrypted message from the operator could not be decrypted.'),
    );
  }

  // loadKeyring fetches the skin's signed keyring and lets trust.js know
  // which keys the page's signer vouches for (none when it does not verify).
  // The highest serial seen is remembered in this browser, so an older
  // keyring (one listing a revoked key) is refused later.
  async loadKeyring() {
    const skin = this.name;
    const seenKey = 'otrdesk-keyring:' + skin + ':' + this.ctx.signerAttr.trim();
    let keys = [];
    let problem = '';
    try {
      const res = await fetch(this.ctx.base + 'skins/' + encodeURIComponent(skin) + '.keyring', { credentials: 'omit', cache: 'no-store' });
      const text = res.ok ? new Uint8Array(await res.arrayBuffer()) : '';
      let minSerial = '0';
      try {
        minSerial = window.localStorage.getItem(seenKey) || '0';
      } catch {
        // no storage: only this page load's keyring counts
      }
      const r = await verifyKeyring({ text, signer: this.signerKey, skin, minSerial });
      if (r.ok) {
        keys = r.keys.filter((k) => k.kind === 'otr' || k.kind === 'omemo').map((k) => k.value);
        try {
          window.localStorage.setItem(seenKey, String(r.serial));
        } catch {
          // as above
        }
      } else {
        problem = keyringProblem(r.reason);
      }
    } catch {
      problem = keyringProblem('malformed');
    }
    if (problem) this.note(problem);
    this.apply(this.trust.anchor('signer', keys));
  }

  // ---- XMPP ----

  connect(restore) {
    clearTimeout(this.reconnectTimer);
    this.watchNetwork();
    const conn = new Strophe.Connection(this.skin.bosh_url, { keepalive: true });
    this.conn = conn;
    conn.addHandler((m) => {
      if (conn === this.conn) this.onMessage(m);
      else if (conn === this.lingering && m.getElementsByTagNameNS(NS_OTRDESK, 'status')[0]?.getAttribute('state') === 'ended') this.lingerDone();
      return true;
    }, null, 'message');
    // A request that fails without an HTTP status is a network failure.
    // Strophe would retry with a backoff of up to a minute; after the
    // second one in a row (the first while still logging in) the widget
    // takes over with its own, shorter backoff.
    let netErrors = 0;
    conn.addProtocolErrorHandler('HTTP', 0, () => {
      if (conn !== this.conn) return;
      netErrors++;
      if (!this.connected || netErrors >= 2) this.lost('network');
    });
    // Strophe sends what a response's handlers queued (the next step of
    // the login, a new long poll after an answer) on its next 100 ms tick
    // only; a login alone has five such steps. Send it as soon as the
    // response has been handled instead.
    let flushing = false;
    conn.xmlInput = () => {
      netErrors = 0; // every BOSH response, even an empty one
      if (flushing) return;
      flushing = true;
      queueMicrotask(() => {
        flushing = false;
        if (conn === this.conn && !conn.disconnecting) conn.flush();
      });
    };
    const cb = (status, cond) => {
      if (conn !== this.conn) return;
      this.onConnStatus(conn, status, cond);
    };
    if (!this.wasLost && !restore) this.setStatus(S.CONNECTING);
    if (restore) {
      try {
        conn.restore(this.skin.anonymous_domain, cb);
        return;
      } catch {
        // nothing to restore: a new session below
      }
    }
    conn.connect(this.skin.anonymous_domain, null, cb);
  }

  onConnStatus(conn, status, cond) {
    const St = Strophe.Status;
    mark('xmpp-' + (Object.keys(St).find((k) => St[k] === status) || status).toLowerCase());
    switch (status) {
      case St.CONNECTED:
        this.online(false);
        break;
      case St.ATTACHED:
        this.online(true);
        break;
      case St.ATTACHFAIL:
        this.connect(false);
        break;
      case St.AUTHFAIL:
        this.error('The chat server refused an anonymous login. Please tell the website owner.');
        break;
      case St.CONNFAIL:
      case St.CONNTIMEOUT:
      case St.ERROR:
        this.lost(cond);
        break;
      case St.DISCONNECTED:
        if (!this.ending) this.lost(cond);
        break;
      default:
    }
  }

  online(resumed) {
    if (this.omemoGate) {
      // Whether the OMEMO engine runs must be known first: its keys go
      // before anything else of this session.
      const conn = this.conn;
      this.omemoGate.then(() => {
        this.omemoGate = null;
        if (conn === this.conn) this.online(resumed);
      });
      return;
    }
    this.connected = true;
    this.backoff = 1000;
    this.error('');
    const wasLost = this.wasLost;
    this.wasLost = false;
    if (!resumed) this.setStatus('');
    else if (wasLost) this.setStatus(this.saved.operator ? 'You are chatting with ' + this.saved.operator + '.' : '');
    this.opening.clear();
    this.admission = new Admission();
    this.taken = resumed; // attached after a reload: the chat is the service's already
    this.handKeys();
    if (!resumed) {
      // A new XMPP session is a new visitor for the component: the chat
      // goes on only if the service takes the resumption secret, which is
      // sent before anything else.
      const secret = this.resumer.login({ started: !!this.saved.started, ended: !!this.saved.ended });
      this.resumeAgain = false;
      if (secret) {
        this.setStatus(S.RESUMING);
        this.askResume(secret);
      } else {
        if (this.restoring || this.hadSession) this.note(S.NEW_CHAT);
        this.saved.operator = '';
        this.saved.started = false;
        this.save();
      }
    }
    // Attached to the same BOSH session after a reload, the same chat goes
    // on, but the engine's session did not survive the page: a new round.
    this.hadSession = true;
    this.apply(this.trust.connected(resumed && this.saved.e2ee === 'omemo' && this.omemoHanded));
  }

  // askResume presents the chat's resumption secret, before anything else
  // of this session reaches the service.
  askResume(secret) {
    this.resumeSid = 'w' + ++this.lastSid;
    this.conn.send($msg({ to: this.jid, type: 'chat', id: this.resumeSid }).c('resume', { xmlns: NS_OTRDESK, secret }).up());
    this.flushSoon();
  }

  // resumed: what the service answered to the resume request.
  resumed(r) {
    if (r === 'resumed') {
      this.note(S.RESUMED);
    } else if (r === 'refused') {
      this.note(S.RESUME_REFUSED);
      this.saved.operator = '';
      this.saved.resume = '';
      this.save();
      this.setStatus('');
    }
  }

  // abandon stops a connection whose network went away: Strophe would
  // retry its requests with a backoff of up to a minute, far longer than a
  // visitor waits.
  abandon() {
    const old = this.conn;
    this.conn = null;
    if (!old) return;
    try {
      old.reset();
      old.pause();
    } catch {
      // a half-dead connection may throw; it is dropped either way
    }
  }

  lost(cond) {
    if (this.ending || this.saved.ended) return;
    this.wasLost = true;
    this.connected = false;
    this.abandon();
    this.apply(this.trust.disconnected());
    // Nothing of the old session can be confirmed or sent again.
    clearTimeout(this.probeTimer);
    this.delivery(this.outbox.lost());
    this.resumeSid = '';
    this.resumeAgain = false;
    this.akeBounced = false;
    this.setStatus(S.RECONNECTING);
    const delay = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    clearTimeout(this.reconnectTimer);
    // Strophe has already retried its requests: the BOSH session is gone,
    // so the next attempt is a new login (and a new chat) rather than an
    // attach to the cached session.
    try {
      this.store && this.store.removeItem('strophe-bosh-session');
    } catch {
      // ignore
    }
    // While the browser knows it is offline, wait for its online event.
    if (navigator.onLine !== false) this.reconnectTimer = setTimeout(() => this.connect(false), delay);
    void cond;
  }

  watchNetwork() {
    if (this.netHooks) return;
    this.netHooks = {
      online: () => {
        if (!this.conn && this.wasLost && !this.saved.ended && !this.ending) this.connect(false);
      },
      offline: () => {
        if (this.conn && !this.saved.ended && !this.ending) this.lost('offline');
      },
    };
    window.addEventListener('online', this.netHooks.online);
    window.addEventListener('offline', this.netHooks.offline);
  }

  // xmpp sends a message to the skin and returns its stanza id ('' when
  // there is no connection, '-' when nothing needed to be sent).
  xmpp(body, extra) {
    if (!this.conn || !this.connected) return '';
    if (body === null && extra !== 'end' && !this.saved.started) return '-'; // no chat state opens a chat
    if (body !== null && !this.saved.started) {
      this.saved.started = true;
      this.save();
    }
    const sid = 'w' + ++this.lastSid;
    const m = $msg({ to: this.jid, type: 'chat', id: sid });
    if (body !== null) m.c('body').t(body).up();
    if (body !== null && body.startsWith('?OTR')) this.hints(m);
    if (extra) m.c(extra, { xmlns: extra === 'end' ? NS_OTRDESK : NS_CHATSTATES }).up();
    this.conn.send(m);
    this.flushSoon();
    if (body !== null && !this.taken && this.opening.size < 16) this.opening.set(sid, body);
    return sid;
  }

  // stamp answers a proof-of-work challenge to the opening stanza sid:
  // the worker finds the nonce (pow.js), then the same body goes again
  // with the stamp beside it.
  stamp(sid, ch) {
    const body = this.opening.get(sid);
    this.opening.delete(sid);
    if (body === undefined) return;
    if (this.admission.challenged() === 'give-up') {
      this.error(ERROR_WORDS['resource-constraint']);
      this.setStatus('');
      this.delivery(this.outbox.bounced(sid, 'resource-constraint'));
      return;
    }
    this.setStatus(S.POW_WAITING);
    mark('pow-start');
    const conn = this.conn;
    const found = this.otrReady ? this.otrReady.then((otr) => (otr ? otr.pow(ch.challenge, ch.bits) : solveInSteps(ch))) : solveInSteps(ch);
    found.then((nonce) => {
      mark('pow-done');
      if (conn !== this.conn || !this.connected || !nonce) return;
      const nsid = 'w' + ++this.lastSid;
      const m = $msg({ to: this.jid, type: 'chat', id: nsid }).c('body').t(body).up();
      if (body.startsWith('?OTR')) this.hints(m);
      m.c('pow', { xmlns: NS_OTRDESK, challenge: ch.challenge, nonce }).up();
      this.opening.set(nsid, body);
      this.outbox.renamed(sid, nsid);
      conn.send(m);
      this.flushSoon();
    });
  }

  // hints keeps an OTR message out of carbons and archives.
  hints(m) {
    m.c('private', { xmlns: NS_CARBONS }).up();
    m.c('no-copy', { xmlns: NS_HINTS }).up();
    m.c('no-store', { xmlns: NS_HINTS }).up();
  }

  flushSoon() {
    // Strophe holds outgoing stanzas for up to 100 ms to batch them; each
    // AKE step would pay that. Flush once per task instead (fragments and
    // chat states sent together still share one request).
    if (!this.flushQueued && !this.ending) { // ending: end() flushes the OTR disconnect and <end/> together
      this.flushQueued = true;
      const conn = this.conn;
      queueMicrotask(() => {
        this.flushQueued = false;
        if ((conn === this.conn && this.connected) || conn === this.lingering) conn.flush();
      });
    }
  }

  onMessage(m) {
    const from = Strophe.getBareJidFromJid(m.getAttribute('from') || '').toLowerCase();
    if (from !== this.jid) return;
    if (m.getAttribute('type') === 'error') {
      const err = m.getElementsByTagName('error')[0];
      let cond = '';
      if (err) for (const c of err.children) if (c.namespaceURI === NS_STANZAS && c.localName !== 'text') cond = c.localName;
      const id = m.getAttribute('id') || '';
      if (id && id === this.resumeSid) {
        // The answer to the resume request: refused, or bounced because
        // the service is away (then it goes again when the service is back).
        this.resumeSid = '';
        const r = this.resumer.answer(AWAY.includes(cond) ? 'away' : 'error');
        if (r === 'retry') this.resumeAgain = true;
        else this.resumed(r);
        if (cond === 'item-not-found') return;
      }
      // Over the new-chat rate: the service asks for proof of work.
      const pow = err && [...err.children].find((c) => c.namespaceURI === NS_OTRDESK && c.localName === 'pow');
      const ch = pow && cond === 'resource-constraint' ? readChallenge(pow.getAttribute('challenge'), pow.getAttribute('bits')) : null;
      if (ch && this.opening.has(id)) {
        this.stamp(id, ch);
        return;
      }
      const a = this.outbox.bounced(id, cond);
      this.delivery(a);
      if (AWAY.includes(cond)) return; // said by delivery, and on each message
      // The condition's name is the service's word too.
      const named = /^[a-z-]{1,40}$/.test(cond) && neutral(cond) === cond ? cond : 'unknown error';
      this.error((Object.prototype.hasOwnProperty.call(ERROR_WORDS, cond) ? ERROR_WORDS[cond] : '') || 'A message could not be delivered (' + named + ').');
      return;
    }
    const status = m.getElementsByTagNameNS(NS_OTRDESK, 'status')[0];
    if (status) this.onStatus(status);
    for (const c of m.children) {
      if (c.namespaceURI !== NS_CHATSTATES) continue;
      const who = this.saved.operator || 'The operator';
      this.typingEl(c.localName === 'composing' ? who + ' is typing…' : '');
    }
    const enc = OX.encryptedOf(m);
    if (enc) {
      this.typingEl('');
      this.onEncrypted(enc);
      return;
    }
    const body = m.getElementsByTagName('body')[0];
    if (!body) return;
    const text = body.textContent || '';
    this.typingEl('');
    if (this.policy === 'plaintext' || !this.otrReady) {
      this.add('them', text, { who: this.saved.operator });
      return;
    }
    this.trust.peer(text);
    const round = this.trust.round;
    this.otrReady.then((otr) => {
      if (otr) otr.receive(round, text);
      else this.add('them', text, { who: this.saved.operator, mark: 'unencrypted' });
    });
  }

  typingEl(text) {
    if (!this.typingLine) {
      this.typingLine = el('p', 'q');
      this.typingLine.setAttribute('aria-live', 'off');
      this.statusEl.after(this.typingLine);
    }
    this.typingLine.textContent = text;
  }

  onStatus(st) {
    const state = st.getAttribute('state');
    // The service took the chat: nothing it opened with is asked for again.
    this.opening.clear();
    this.taken = true;
    this.admission.admitted();
    // The first status after a resume request is its answer: taken back.
    let back = false;
    if (this.resumer.waiting) {
      this.resumeSid = '';
      back = this.resumer.answer('status') === 'resumed';
      if (back) this.resumed('resumed');
    }
    if (state !== 'ended' && this.resumer.offered(st.getAttribute('resume'))) {
      this.saved.resume = this.resumer.secret; // sessionStorage only
      this.save();
    }
    const name = this.opName(st.getAttribute('operator'));
    switch (state) {
      case 'queued': {
        const pos = parseInt(st.getAttribute('position') || '', 10);
        this.saved.operator = '';
        this.save();
        this.setStatus(pos > 0 ? 'Waiting for an operator. You are number ' + pos + ' in the queue.' : 'Waiting for an operator…');
        // Back in the queue after an AKE (the operator went away): whoever
        // takes the chat next gets a new AKE, held by the component until then.
        this.apply(this.trust.status('queued'));
        break;
      }
      case 'assigned': {
        // Taken back with the operator it had: nobody new joined.
        if (!(back && name === this.saved.operator)) this.note(name + ' joined the chat.', true);
        const e2ee = st.getAttribute('e2ee') === 'omemo' ? 'omemo' : 'otr';
        this.saved.operator = name;
        this.saved.e2ee = e2ee;
        this.save();
        this.setStatus('You are chatting with ' + name + '.');
        this.apply(this.trust.status('assigned', e2ee, this.omemoHanded));
        break;
      }
      case 'transferred':
        this.setStatus('Your chat is being transferred to another operator…');
        this.note('Your chat is being transferred.');
        this.apply(this.trust.status('transferred'));
        break;
      case 'ended':
        if (!this.ending) this.finish(S.ENDED);
        break;
      default:
    }
  }

  // freshAKE asks the operator for a new OTR session, for the round trust.js
  // has just begun; the worker forgets every session of earlier rounds.
  freshAKE() {
    if (this.policy === 'plaintext' || !this.otrReady) return;
    const round = this.trust.round;
    if (this.trust.mode === 'omemo') {
      // No AKE: the operator's devices are read from the skin. The OTR
      // engine forgets its sessions, which can no longer describe the chat.
      const at = Date.now();
      this.toWorker((otr) => otr.reset(round, at));
      this.readDevices(round);
      return;
    }
    if (this.connected) {
      // The query is a constant, so it goes out now, while the wasm engine
      // may still be starting: its start-up overlaps the first round trip.
      // The worker starts a fresh conversation before it sees the answer
      // (messages to the worker stay in order).
      this.xmpp(OTR_QUERY);
      const at = Date.now();
      this.toWorker((otr) => otr.reset(round, at));
      return;
    }
    this.toWorker((otr) => otr.query(round));
  }

  // ---- OTR worker events ----

  onOTR(ev) {
    switch (ev.ev) {
      case 'send':
        // Bodies of any round go out: ciphertext to the session it was
        // meant for when it was made, or AKE steps.
        if (ev.id) this.track(this.xmpp(ev.body), ev.id, ev.body, ev.round);
        else this.xmpp(ev.body);
        break;
      case 'show': {
        const o = this.trust.engine(ev);
        if (o.show) this.add('them', o.show.text, { who: this.saved.operator, mark: o.show.mark });
        this.apply(o);
        break;
      }
      case 'state':
        this.saved.otr = ev.state;
        this.save();
        break;
      case 'peer-error':
        this.add('them', ev.message, { who: this.saved.operator, mark: 'peer-error' });
        break;
      case 'error':
        this.note(neutral(ev.message));
        break;
      default:
        this.apply(this.trust.engine(ev));
    }
  }

  // ---- the visitor's actions ----

  submit() {
    const text = this.input.value;
    if (!text.trim() || this.saved.ended) return;
    this.input.value = '';
    this.grow();
    this.composing = false;
    clearTimeout(this.pausedTimer);
    const o = this.trust.type(text);
    const e = this.add('me', text, { state: 'held' });
    this.mine.set(o.id, e);
    this.apply(o);
  }

  // confirm: the visitor chose to write to the operator although the key
  // is not the one published, for the session the button was offered for.
  confirm() {
    const o = this.trust.confirm(this.confirmFor);
    this.apply(o);
    this.input.focus();
  }

  // grow fits the input to its text, up to the stylesheet's max-height.
  grow() {
    this.input.style.height = '';
    const h = Math.min(this.input.scrollHeight + 2, 120);
    if (h > 44) this.input.style.height = h + 'px';
    this.input.style.overflowY = this.input.scrollHeight + 2 > 120 ? 'auto' : 'hidden';
  }

  typing() {
    if (!this.connected || this.saved.ended) return;
    if (!this.composing) {
      this.composing = true;
      this.xmpp(null, 'composing');
    }
    clearTimeout(this.pausedTimer);
    this.pausedTimer = setTimeout(() => {
      this.composing = false;
      this.xmpp(null, 'paused');
    }, PAUSED_AFTER_MS);
  }

  end() {
    if (this.saved.ended) return;
    this.ending = true;
    const done = () => {
      // Strophe's disconnect drops stanzas still queued behind two BOSH
      // requests in flight, so the session stays up until the component
      // confirms the end (status "ended"), or for a few seconds at most.
      if (this.xmpp(null, 'end') && this.conn) {
        const conn = this.conn;
        this.lingering = conn;
        conn.flush();
        const bye = () => {
          clearTimeout(timer);
          if (this.lingering !== conn) return;
          this.lingering = null;
          if (conn.connected && !conn.disconnecting) conn.disconnect('chat ended');
        };
        const timer = setTimeout(bye, 5000);
        this.lingerDone = bye;
      }
      this.finish(S.ENDED_BY_YOU);
    };
    if (this.otr && this.trust.latest && !this.trust.latest.omemo) {
      this.otr.end(this.trust.round).then(done, done);
    } else {
      done();
    }
  }

  finish(text) {
    this.ending = true;
    this.note(text);
    this.setStatus(text);
    this.saved.ended = true;
    this.apply(this.trust.end());
    clearTimeout(this.probeTimer);
    this.resumer.end();
    try {
      this.store && this.store.removeItem('strophe-bosh-session');
    } catch {
      // ignore
    }
    if (this.conn && this.conn !== this.lingering && this.conn.connected && !this.conn.disconnecting) this.conn.disconnect('chat ended');
    this.conn = null;
    this.connected = false;
    this.input.disabled = true;
    this.sendBtn.disabled = true;
    this.endBtn.hidden = true;
    this.newBtn.hidden = false;
    this.newBtn.focus();
  }

  restart() {
    // A new chat in the same widget: forget everything but the panel.
    if (this.otr) this.otr.terminate();
    if (this.omemo) this.omemo.terminate();
    if (this.netHooks) {
      window.removeEventListener('online', this.netHooks.online);
      window.removeEventListener('offline', this.netHooks.offline);
    }
    this.panel.remove();
    this.ctx.restart();
  }

  download() {
    const lines = [
      neutral(this.skin.title || 'Chat') + ' — transcript',
      'Saved ' + new Date().toISOString(),
      '',
    ];
    // The file says what the panel said: the service's words screened, and
    // lines not from the described session marked.
    for (const m of this.saved.transcript) {
      const who = m.dir === 'me' ? 'You' : m.dir === 'them' ? this.opName(m.who) : '*';
      let text = m.text;
      if (m.dir === 'them') text = (MARKS[m.mark] || '') + neutral(text);
      else if (m.svc) text = neutral(text);
      else if (m.dir === 'me' && m.state === 'dropped') text += ' (not sent)';
      else if (m.dir === 'me' && m.state === 'failed') text += ' (not delivered)';
      else if (m.dir === 'me' && m.state === 'unconfirmed') text += ' (maybe not delivered)';
      lines.push('[' + new Date(m.t).toISOString().slice(11, 19) + '] ' + who + ': ' + text);
    }
    const blob = new Blob([lines.join('\n') + '\n'], { type: 'text/plain;charset=utf-8' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = 'chat-' + this.name + '-' + new Date().toISOString().slice(0, 10) + '.txt';
    a.hidden = true;
    this.panel.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }
}

// solveInSteps finds a proof-of-work nonce on the page's thread, in
// slices that leave the page responsive (when there is no worker: the
// plaintext policy, or an engine that could not start).
function solveInSteps(ch) {
  const step = 20000;
  return new Promise((resolve) => {
    let from = 0;
    const next = () => {
      const n = solve(ch.challenge, ch.bits, from, step);
      from += step;
      if (n || from >= 1e10) resolve(n);
      else setTimeout(next, 0);
    };
    next();
  });
}

function mount(ctx) {
  let chat = null;
  const open = (skin) => {
    chat = new Chat({ ...ctx, skin, restart });
    chat.start();
  };
  // A new chat (or "Try again" when nobody was available) reads the skin
  // again: availability and fingerprints may have changed.
  const restart = () => {
    fetch(ctx.base + 'skins/' + encodeURIComponent(ctx.skinName || ctx.skin.name) + '.json', { credentials: 'omit', cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))))
      .then(open, () => open(ctx.skin));
  };
  open(ctx.skin);
  return {
    show: () => chat.show(),
  };
}

// warm: the launcher starts the engine on hover or focus, before the click.
globalThis.__otrdeskChat = { mount, warm: warmOTR };
