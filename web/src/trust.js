// @ts-check
// The widget's security decision, as a pure state machine: no DOM, no
// network, no worker. chat.js feeds it what happens and does what it says.
//
// What it guarantees, against a hostile chat service (the page and this
// code are trusted; everything from the network is not):
//
//   - The security line describes one session: the latest one that finished
//     an AKE in the current round ("latest"). It reads "verified" only when
//     that session's key is trusted.
//   - Text the visitor types goes only to the "bound" session, sent with the
//     engine's sendTo(instance, fingerprint), so the engine refuses if that
//     exact session is gone. The bound session is the latest one, and only
//     once it is settled: its key is trusted, or the visitor chose to write
//     to it anyway (confirm), or — without a pin, under the skin's
//     "opportunistic" policy — it was the round's first session.
//   - Another instance finishing an AKE, or a re-key to another fingerprint,
//     is a change: a note in words, the line now describes the new session,
//     and nothing is sent until it is settled again. A change is never
//     accepted silently unless the new key is trusted.
//   - Text is held until there is a bound session (or the chat is allowed to
//     be plaintext), then sent in the order it was typed. A message the
//     engine refused (not-sent) was never encrypted to anyone and is held
//     again.
//   - Rounds: each fresh AKE (chat start, reconnect, an operator change
//     after OTR traffic, the visitor writing after the operator closed OTR)
//     is a new round. The page tags every op with the round; events from an
//     older round cannot change the state (an encrypted line from one is
//     shown as not from the current session).
//   - A pinned page (data-fingerprint or data-signer) is "require" whatever
//     the skin says: plaintext from the other side is shown as unencrypted
//     and never makes the chat plaintext. A pin that is present but
//     unreadable trusts nothing, and the line says the page is
//     misconfigured. A signer pin trusts nothing until its keyring has been
//     verified (anchor('signer', keys)); until then an untrusted session gets
//     no verdict ("pending") and no choice is offered.
//
//   - OMEMO: when the service says a chat is OMEMO (e2ee='omemo' in the
//     status of an assignment), a new round begins in which the session is
//     the set of operator devices chat.js read (engine event
//     'omemo-devices'). The set keeps only the devices whose identity keys
//     the page trusts, when there is at least one: an operator's device
//     that is not trusted (yet) gets nothing, and the line reads
//     "verified" because every device written to is trusted. With no
//     trusted device the set is every device, unverified, and nothing goes
//     until the visitor chooses to write to it. An OMEMO message is from
//     the described session only when its sender device and key are in
//     the set. A status is the service's word: it only selects which of
//     the two protocols' checks apply; neither can make a sentence true by
//     itself.
//
// Inputs: connected(), disconnected(), status(state, e2ee), peer(body),
// engine(ev), type(text), confirm(session), serviceBack(), engineFailed(),
// anchor(name, keys), end().
// Each returns an Out (see below). Reading the state: sentence(), bound(),
// latest, needsConfirm(), round, policy, pinned, misconfigured.

import { canonFP, canonKey, canonOMEMO, humanFP, isOMEMO, parsePins } from './pins.js';

/** @typedef {{device: number, fingerprint: string}} Device */
/**
 * An OTR session is an instance and its key; an OMEMO session is the set of
 * the operator's devices (with their identity keys) written to, and has
 * instance 0 and fingerprint ''.
 * @typedef {{instance: number, fingerprint: string, omemo?: boolean, devices?: Device[]}} Session
 */
/** @typedef {'held'|'sending'|'sent'|'dropped'} MsgState */
/**
 * What chat.js must do after an input.
 * @typedef {{
 *   fresh: boolean,
 *   send: {id: number, text: string, instance: number, fingerprint: string, omemo?: boolean, devices?: Device[]}[],
 *   plain: {id: number, text: string}[],
 *   status: {id: number, state: MsgState}[],
 *   notes: string[],
 *   show: null | {text: string, mark: ''|'unencrypted'|'other-session'},
 *   id: number,
 * }} Out
 *   fresh: a new round began (trust.round): forget the engine's sessions
 *     and ask for a new AKE, tagged with that round; in an OMEMO round
 *     (trust.mode 'omemo') read the operator's devices instead.
 *   send: encrypt each text with sendTo(instance, fingerprint), in order;
 *     when omemo is set, to exactly those devices (and keys) instead.
 *   plain: send each text as it is (the chat is allowed to be plaintext).
 *   status: how each of the visitor's messages stands now.
 *   notes: transcript notes, in words.
 *   show: for an engine "show": the text and how to mark it.
 *   id: for type(): the message's id.
 */

const POLICIES = ['require', 'opportunistic', 'plaintext'];

/** @returns {Out} */
function out() {
  return { fresh: false, send: [], plain: [], status: [], notes: [], show: null, id: 0 };
}

/** @param {Session|null} a @param {Session|null} b */
export function sameSession(a, b) {
  if (!a || !b || !!a.omemo !== !!b.omemo) return false;
  if (!a.omemo) return a.instance === b.instance && a.fingerprint === b.fingerprint;
  const x = a.devices || [];
  const y = b.devices || [];
  return x.length === y.length && x.every((d) => hasDevice(y, d.device, d.fingerprint));
}

/** @param {Device[]} list @param {number} device @param {string} fingerprint */
function hasDevice(list, device, fingerprint) {
  return list.some((d) => d.device === device && d.fingerprint === fingerprint);
}

// describe names a session's key(s) for a person.
/** @param {Session} s */
export function describe(s) {
  return s.omemo ? (s.devices || []).map((d) => humanFP(d.fingerprint)).join(', ') : humanFP(s.fingerprint);
}

export const NOTES = {
  unverifiedHeld: (fp) =>
    "The operator's key (" + fp + ") is not the one published for this chat. What you write is held until you choose “Send to an unverified operator”.",
  changedTrusted: (fp) => 'The encrypted session changed. The new session uses a published key (' + fp + ').',
  changedUntrusted: (fp) =>
    'The encrypted session changed. The new session uses a key that is not the one published for this chat (' + fp + '). Nothing you write is sent until you choose “Send to an unverified operator”.',
  confirmed: (fp) => 'You chose to write to an operator whose key is not the one published for this chat (' + fp + ').',
  closed: 'The operator closed the encrypted session. Messages will not be sent until encryption is set up again.',
  lost: 'The encrypted session was lost. Your message is held while encryption is set up again.',
  nowVerified: "The operator's key is now verified.",
  resent: 'Your last message was sent again, to the same key: the operator’s encrypted session had restarted.',
  plaintext: 'The operator answered without encryption, so this chat is not encrypted.',
  upgraded: 'Encryption is now set up.',
  noDevices:
    'The operator has no device this chat can encrypt to. What you write is held until the operator can receive encrypted messages.',
  misconfigured: 'This page’s chat settings are broken (its pinned key cannot be read), so no operator key can be verified. Please tell the website owner.',
  dropped: 'Messages that were not sent yet were dropped when the chat ended.',
};

export class Trust {
  /**
   * @param {{
   *   skinPolicy?: string,        policy from the skin JSON (the service's word)
   *   skinFingerprints?: string[], trusted keys from the skin JSON (used only without a pin):
   *                                OTR fingerprints and OMEMO identity keys alike
   *   fingerprintAttr?: string|null, the page's data-fingerprint (null: not set)
   *   signer?: null | {ok: boolean}, the page's data-signer, when set: ok when it parses;
   *                                 its keys arrive later with anchor('signer', keys)
   * }} o
   */
  constructor({ skinPolicy = '', skinFingerprints = [], fingerprintAttr = null, signer = null } = {}) {
    const pins = parsePins(fingerprintAttr);
    this.pinned = pins.present || !!signer;
    this.misconfigured = (pins.present && !pins.ok) || (!!signer && !signer.ok);
    /** @type {Map<string, string[]>} trusted keys by the anchor that vouches for them */
    this.anchors = new Map();
    /** @type {Set<string>} anchors whose keys have not arrived yet */
    this.awaiting = new Set(signer && signer.ok ? ['signer'] : []);
    if (this.misconfigured) {
      // nothing is trusted
    } else if (this.pinned) {
      if (pins.present) this.anchors.set('fingerprint', pins.fingerprints);
    } else {
      this.anchors.set('skin', (Array.isArray(skinFingerprints) ? skinFingerprints : []).map(canonKey).filter(Boolean));
    }
    this.policy = this.pinned ? 'require' : POLICIES.includes(skinPolicy) ? skinPolicy : 'require';

    this.round = 0;
    /** @type {'otr'|'omemo'} the protocol of this round */
    this.mode = 'otr';
    this.noDevices = false; // an OMEMO round whose operator has no device to write to
    /** @type {Session|null} the latest session that finished an AKE this round */
    this.latest = null;
    this.accepted = false; // latest may be written to although its key is not trusted
    this.plain = this.policy === 'plaintext'; // the chat is (allowed to be) plaintext now
    this.asking = false; // an AKE was asked for this round and not closed since
    this.peerOTR = false; // the other side sent OTR this round
    this.online = false;
    this.ended = false;
    this.engineOK = this.policy !== 'plaintext';
    /** @type {{id: number, text: string}[]} */
    this.held = [];
    /** @type {Map<number, {text: string, round: number, session: Session}>} */
    this.inflight = new Map();
    this.nextId = 0;
  }

  // ---- reading the state ----

  /** @param {string} fp */
  isTrusted(fp) {
    if (this.misconfigured || !fp) return false;
    for (const keys of this.anchors.values()) if (keys.includes(fp)) return true;
    return false;
  }

  /** Every key the session writes to is trusted. @param {Session|null} s */
  trusted(s) {
    if (!s) return false;
    if (!s.omemo) return this.isTrusted(s.fingerprint);
    const ds = s.devices || [];
    return ds.length > 0 && ds.every((d) => this.isTrusted(d.fingerprint));
  }

  /** Whether the page trusts any OMEMO key, or may once its keyring is in. */
  omemoPossible() {
    if (this.misconfigured || this.policy === 'plaintext') return false;
    for (const keys of this.anchors.values()) if (keys.some(isOMEMO)) return true;
    return false;
  }

  /** @returns {'verified'|'unverified'|'plaintext'|'pending'|'ended'|'misconfigured'} */
  sentence() {
    if (this.ended) return 'ended';
    if (this.misconfigured) return 'misconfigured';
    if (this.plain) return 'plaintext';
    if (this.latest && this.trusted(this.latest)) return 'verified';
    if (!this.latest && this.noDevices && !this.awaiting.size) return 'unverified';
    // Not trusted yet, but an anchor may still vouch for it: no verdict.
    if (this.latest && !this.awaiting.size) return 'unverified';
    return 'pending';
  }

  /** The session typed text goes to, or null. @returns {Session|null} */
  bound() {
    if (this.ended || !this.latest || this.plain) return null;
    return this.trusted(this.latest) || this.accepted ? this.latest : null;
  }

  /** The visitor must choose before anything goes to the latest session. */
  needsConfirm() {
    return !this.ended && !this.plain && !!this.latest && !this.bound() && !this.awaiting.size;
  }

  // ---- inputs ----

  /**
   * A new XMPP session is up: a new chat for the service, a new round.
   * omemo: the same chat goes on (a reload attached to the same session)
   * and its last assignment was OMEMO, with the visitor's keys handed over.
   * @param {boolean} [omemo]
   */
  connected(omemo = false) {
    this.online = true;
    if (this.ended) return out();
    if (this.policy === 'plaintext' || !this.engineOK) return this.flush(out());
    return this.fresh(out(), omemo ? 'omemo' : 'otr');
  }

  /** The XMPP session is gone: nothing can be sent until the next one. */
  disconnected() {
    this.online = false;
    this.latest = null;
    this.noDevices = false;
    this.accepted = false;
    this.asking = false;
    return out();
  }

  /**
   * A status element from the service. After OTR traffic in this round, a
   * new operator (assigned, transferred, back in the queue) means a new AKE.
   * An assignment said to be OMEMO is always a new round, in which the
   * operator's devices are read; any other status after an OMEMO round
   * goes back to OTR. e2ee is the status's attribute ('' when absent), and
   * only when the page could trust an OMEMO key (omemo) is it heeded.
   * @param {string} state
   * @param {string} [e2ee]
   * @param {boolean} [omemo] the widget handed its OMEMO keys over
   */
  status(state, e2ee = '', omemo = false) {
    if (this.ended) return out();
    if (state === 'ended') return this.end();
    if (state === 'assigned' && e2ee === 'omemo' && omemo && this.policy !== 'plaintext' && this.online) return this.fresh(out(), 'omemo');
    if (state === 'queued' || state === 'assigned' || state === 'transferred') {
      if (this.latest || this.peerOTR || this.mode === 'omemo') return this.fresh();
    }
    return out();
  }

  /**
   * A body from the service, before it goes to the engine.
   * @param {string} body
   */
  peer(body) {
    if (String(body).startsWith('?OTR')) this.peerOTR = true;
  }

  /**
   * An event from the OTR worker.
   * @param {{ev: string, round?: number, id?: number, instance?: number, fingerprint?: string,
   *          text?: string, encrypted?: boolean}} ev
   */
  engine(ev) {
    const o = out();
    const current = ev.round === this.round;
    switch (ev.ev) {
      case 'show': {
        const text = String(ev.text ?? '');
        if (!ev.encrypted) {
          o.show = { text, mark: 'unencrypted' };
          if (current && this.policy === 'opportunistic' && !this.plain && !this.latest && !this.peerOTR && this.asking) {
            // The operator answers in plaintext: the skin allows it.
            this.plain = true;
            o.notes.push(NOTES.plaintext);
            this.flush(o);
          }
          return o;
        }
        if (ev.omemo) {
          // From one device: part of the described session only when that
          // device, with that key, is one the visitor writes to.
          const fp = canonOMEMO(ev.fingerprint);
          const l = this.latest;
          const from = current && this.mode === 'omemo' && !!l && !!l.omemo && hasDevice(l.devices || [], Number(ev.device) >>> 0, fp);
          o.show = { text, mark: from ? '' : 'other-session' };
          return o;
        }
        const s = { instance: Number(ev.instance) >>> 0, fingerprint: canonFP(ev.fingerprint) };
        o.show = { text, mark: current && sameSession(s, this.latest) ? '' : 'other-session' };
        return o;
      }
      case 'omemo-devices': {
        if (!current || this.ended || this.mode !== 'omemo') return o;
        /** @type {Device[]} */
        const all = [];
        for (const d of Array.isArray(ev.devices) ? ev.devices : []) {
          const device = Number(d && d.device) >>> 0;
          const fp = canonOMEMO(d && d.fingerprint);
          if (device && fp && !all.some((x) => x.device === device)) all.push({ device, fingerprint: fp });
        }
        all.sort((a, b) => a.device - b.device);
        const ok = all.filter((d) => this.isTrusted(d.fingerprint));
        const prev = this.latest;
        if (!all.length) {
          // Nobody to write to: held, and the line says not verified.
          if (prev || !this.noDevices) o.notes.push(NOTES.noDevices);
          this.latest = null;
          this.accepted = false;
          this.noDevices = true;
          return o;
        }
        this.noDevices = false;
        /** @type {Session} */
        const s = { instance: 0, fingerprint: '', omemo: true, devices: ok.length ? ok : all };
        if (sameSession(prev, s)) return o;
        this.latest = s;
        this.accepted = !prev && this.policy === 'opportunistic';
        const good = ok.length > 0;
        if (prev) o.notes.push(good ? NOTES.changedTrusted(describe(s)) : NOTES.changedUntrusted(describe(s)));
        else if (!good && !this.accepted && !this.awaiting.size) o.notes.push(NOTES.unverifiedHeld(describe(s)));
        return this.flush(o);
      }
      case 'secure': {
        if (!current || this.ended) return o;
        const fp = canonFP(ev.fingerprint);
        if (!fp) return o;
        const s = { instance: Number(ev.instance) >>> 0, fingerprint: fp };
        const prev = this.latest;
        this.peerOTR = true;
        if (sameSession(prev, s)) return o; // a refresh of the same session
        if (this.plain && this.policy === 'opportunistic') {
          this.plain = false;
          o.notes.push(NOTES.upgraded);
        }
        this.latest = s;
        this.accepted = !prev && this.policy === 'opportunistic';
        const ok = this.isTrusted(fp);
        if (prev) o.notes.push(ok ? NOTES.changedTrusted(humanFP(fp)) : NOTES.changedUntrusted(humanFP(fp)));
        else if (!ok && !this.accepted && !this.awaiting.size) o.notes.push(NOTES.unverifiedHeld(humanFP(fp)));
        return this.flush(o);
      }
      case 'insecure': {
        if (!current || this.ended) return o;
        const inst = Number(ev.instance) >>> 0;
        if (!this.latest || (inst && inst !== this.latest.instance)) return o;
        this.latest = null;
        this.accepted = false;
        this.asking = false; // the next message asks for a new AKE
        o.notes.push(NOTES.closed);
        if (this.held.length && this.online) return this.fresh(o);
        return o;
      }
      case 'sent': {
        const m = this.inflight.get(Number(ev.id));
        if (!m) return o;
        this.inflight.delete(Number(ev.id));
        o.status.push({ id: Number(ev.id), state: 'sent' });
        return o;
      }
      case 'not-sent': {
        const id = Number(ev.id);
        const m = this.inflight.get(id);
        if (!m) return o;
        this.inflight.delete(id);
        // Never encrypted to anyone: it waits again, in its place.
        let i = this.held.findIndex((h) => h.id > id);
        if (i < 0) i = this.held.length;
        this.held.splice(i, 0, { id, text: m.text });
        o.status.push({ id, state: 'held' });
        if (this.ended) return o;
        if (m.round === this.round && sameSession(m.session, this.latest)) {
          // The engine has no such session although the state says so.
          this.latest = null;
          this.accepted = false;
          o.notes.push(NOTES.lost);
          if (this.online) return this.fresh(o, this.mode);
          return o;
        }
        return this.flush(o);
      }
      case 'resent':
        if (current) o.notes.push(NOTES.resent);
        return o;
      default:
        return o;
    }
  }

  /**
   * The visitor sent a message.
   * @param {string} text
   */
  type(text) {
    const o = out();
    const id = ++this.nextId;
    o.id = id;
    if (this.ended) {
      o.status.push({ id, state: 'dropped' });
      return o;
    }
    this.held.push({ id, text: String(text) });
    o.status.push({ id, state: 'held' });
    this.flush(o);
    if (this.held.length && !this.asking && !this.latest && !this.plain && this.online && this.engineOK) this.fresh(o);
    return o;
  }

  /**
   * The visitor chose to write to the latest session although its key is
   * not trusted. session is the one the choice was offered for: when
   * another has taken its place since, the choice does not carry over.
   * @param {Session|null} session
   */
  confirm(session) {
    const o = out();
    if (!this.needsConfirm() || !sameSession(session, this.latest)) return o;
    this.accepted = true;
    o.notes.push(NOTES.confirmed(describe(this.latest)));
    return this.flush(o);
  }

  /**
   * The chat service answers again after it was away (its stanzas bounced).
   * An AKE whose steps bounced meanwhile never finishes: when a session was
   * asked for and none is up, ask again, in a new round.
   */
  serviceBack() {
    if (this.ended || !this.online || this.latest || this.plain || !this.engineOK || !this.asking) return out();
    return this.fresh(out(), this.mode);
  }

  /** The OTR engine could not start in this browser. */
  engineFailed() {
    this.engineOK = false;
    const o = out();
    if (this.policy === 'opportunistic') {
      this.plain = true;
      this.flush(o);
    }
    return o;
  }

  /**
   * An anchor of the page vouches for keys (the signer's verified keyring),
   * or for none (keys = [] when it could not be verified).
   * @param {string} name
   * @param {string[]} keys
   */
  anchor(name, keys) {
    const o = out();
    if (!this.pinned || this.misconfigured) return o;
    const before = this.sentence();
    this.anchors.set(name, keys.map(canonKey).filter(Boolean));
    this.awaiting.delete(name);
    if (before === 'unverified' && this.sentence() === 'verified') o.notes.push(NOTES.nowVerified);
    if (this.latest && this.sentence() === 'unverified' && !this.accepted) o.notes.push(NOTES.unverifiedHeld(describe(this.latest)));
    return this.flush(o);
  }

  /** The chat is over: held messages are dropped. */
  end() {
    const o = out();
    if (this.ended) return o;
    this.ended = true;
    this.latest = null;
    this.accepted = false;
    if (this.held.length) o.notes.push(NOTES.dropped);
    for (const h of this.held) o.status.push({ id: h.id, state: 'dropped' });
    this.held = [];
    return o;
  }

  // ---- inner steps ----

  /** @param {Out} [o] @param {'otr'|'omemo'} [mode] */
  fresh(o = out(), mode = 'otr') {
    this.round++;
    this.mode = mode;
    this.noDevices = false;
    this.latest = null;
    this.accepted = false;
    this.peerOTR = false;
    this.asking = true;
    this.plain = this.policy === 'plaintext';
    o.fresh = true;
    return o;
  }

  /** Sends what is held, if it can go now. @param {Out} o */
  flush(o) {
    if (this.ended || !this.online || !this.held.length) return o;
    if (this.plain) {
      for (const h of this.held) {
        o.plain.push(h);
        o.status.push({ id: h.id, state: 'sent' });
      }
      this.held = [];
      return o;
    }
    const s = this.bound();
    if (!s) return o;
    for (const h of this.held) {
      this.inflight.set(h.id, { text: h.text, round: this.round, session: s });
      if (s.omemo) o.send.push({ id: h.id, text: h.text, instance: 0, fingerprint: '', omemo: true, devices: (s.devices || []).map((d) => ({ ...d })) });
      else o.send.push({ id: h.id, text: h.text, instance: s.instance, fingerprint: s.fingerprint });
      o.status.push({ id: h.id, state: 'sending' });
    }
    this.held = [];
    return o;
  }
}
