// @ts-check
// What the widget knows about the delivery of the visitor's words, as a
// pure state machine: no DOM, no network, no timers. chat.js gives every
// stanza an id, tells the outbox what went out and what came back, and
// does what it answers (send a ping now or later, send bytes again, show a
// message's state).
//
// Why: the chat service (otrdesk's XMPP component) can be away for a
// while — killed, restarting, upgraded — while the XMPP server and the
// visitor's session stay up. The server then answers every stanza to the
// service with an error that carries the stanza's id
// (service-unavailable; remote-server-not-found or remote-server-timeout
// on some servers), and nothing reaches the operator.
//
// How:
//   - Each stanza carrying the visitor's words (the OTR Data message, as
//     the engine encrypted it) is kept, bytes and all, until the service is
//     known to have it.
//   - The service is known to have a stanza when a ping (XEP-0199) sent
//     after it, to the same address, is answered by the service: the server
//     delivers one sender's stanzas to one address in order, and the service
//     handles them in order, so the answer comes after the stanza was
//     handled. A short while after each message (confirmAfter) a ping goes
//     out to confirm it.
//   - A stanza that bounced makes its message "pending". The outbox then
//     pings the service with an exponential backoff and jitter; once a ping
//     is answered it gives back the very same bytes, in the order they were
//     first sent, to send again, and confirms them with the next ping. The
//     bytes were encrypted to one OTR session: encrypting the text again
//     could send it to a session the visitor never saw described, so the
//     outbox never asks for that. The operator's engine decrypts a message
//     it never received once.
//   - Only what bounced is sent again. A stanza that went out while the
//     service was up, neither bounced nor was confirmed, and then the
//     service went away (a later ping bounced, or the connection dropped)
//     may or may not have been handled; a second copy would be refused by
//     the operator's OTR engine as a replay, with an error shown on their
//     side. Its message is marked "unconfirmed" and the visitor is told.
//   - Bytes made for an earlier round (a fresh AKE has begun since) cannot
//     be read by the operator's new session: such a pending message is
//     "failed", as is one whose stanza bounced more than maxTries times or
//     was refused by the service for good (too long, blocked).
//
// Message states reported (besides the 'sent' trust.js reports):
//   'pending'     bounced; will be sent again when the service is back
//   'delivered'   the service has it (late: it had been pending)
//   'unconfirmed' may not have arrived, will not be sent again
//   'failed'      was not delivered and will not be sent again

/** @typedef {'out'|'bounced'|'resent'} EntryState */
/** @typedef {{sid: string, msg: number, body: string, round: number, state: EntryState, tries: number, seq: number}} Entry */
/** @typedef {'pending'|'delivered'|'unconfirmed'|'failed'} DeliveryState */
/**
 * What chat.js must do.
 * @typedef {{
 *   status: {id: number, state: DeliveryState, late?: boolean}[],
 *   resend: {sid: string, body: string}[],
 *   probeIn: number|null,
 *   down: boolean|null,
 * }} Act
 *   status: how each message stands now.
 *   resend: send each body again, in order, as a new stanza with that id
 *     (the same bytes; the id is new so a late answer to the old one cannot
 *     be mistaken for an answer to it).
 *   probeIn: send a ping after this many milliseconds (null: no change;
 *     chat.js keeps at most one timer and one ping in flight).
 *   down: true when the service is known to be away, false when it is
 *     known to be back, null when this input says nothing about it.
 */

// The conditions that mean "the service is not there", not "the service
// refused this": the server answers them for the service while it is away.
export const AWAY = ['service-unavailable', 'remote-server-not-found', 'remote-server-timeout'];

/** @returns {Act} */
function act() {
  return { status: [], resend: [], probeIn: null, down: null };
}

export class Outbox {
  /**
   * @param {{
   *   random?: () => number,  in [0, 1): jitter
   *   base?: number,          first backoff, ms
   *   max?: number,           longest backoff, ms
   *   confirmAfter?: number,  how long after a message its confirming ping goes, ms
   *   maxTries?: number,      how often one message's bytes are sent at most
   * }} [o]
   */
  constructor({ random = Math.random, base = 1000, max = 30000, confirmAfter = 500, maxTries = 5 } = {}) {
    this.random = random;
    this.base = base;
    this.max = max;
    this.confirmAfter = confirmAfter;
    this.maxTries = maxTries;
    /** @type {Entry[]} in the order first sent */
    this.entries = [];
    this.seq = 0; // counts stanzas sent, to place pings among them
    /** @type {null | {pid: string, seq: number}} the ping in flight */
    this.ping = null;
    this.timer = false; // chat.js has a ping scheduled
    this.failures = 0; // pings in a row that bounced
    this.away = false;
    this.nextSid = 0;
  }

  /** A fresh stanza id for a resent stanza. */
  sid() {
    return 'r' + ++this.nextSid;
  }

  /** Messages that wait for the service (for the words around them). */
  pending() {
    return this.entries.some((e) => e.state === 'bounced');
  }

  /**
   * A stanza with (part of) visitor message msg went out.
   * @param {string} sid @param {number} msg @param {string} body @param {number} round
   */
  sent(sid, msg, body, round) {
    this.entries.push({ sid, msg, body, round, state: 'out', tries: 1, seq: ++this.seq });
    const a = act();
    if (!this.ping && !this.timer) a.probeIn = this.away ? this.backoff() : this.confirmAfter;
    if (a.probeIn !== null) this.timer = true;
    return a;
  }

  /**
   * The stanza sid went again as newSid (with a proof-of-work stamp: the
   * service asked for it, it did not get lost).
   * @param {string} sid @param {string} newSid
   */
  renamed(sid, newSid) {
    const e = this.entries.find((x) => x.sid === sid);
    if (e) {
      e.sid = newSid;
      e.seq = ++this.seq;
    }
  }

  /** Some other stanza went out (it moves the order on). */
  other() {
    this.seq++;
  }

  /**
   * An error answered stanza sid.
   * @param {string} sid @param {string} cond the error's condition
   */
  bounced(sid, cond) {
    const a = act();
    const e = this.entries.find((x) => x.sid === sid);
    if (!e) {
      // Another stanza (an AKE step, a chat state): it says the service is away.
      if (AWAY.includes(cond)) this.wentAway(a);
      return a;
    }
    if (e.state === 'bounced') return a;
    if (!AWAY.includes(cond)) {
      // The service has it and refused it: not sent again.
      this.fail(e.msg, a);
      return a;
    }
    this.wentAway(a);
    if (e.tries >= this.maxTries) {
      this.fail(e.msg, a);
      return a;
    }
    const was = this.stateOf(e.msg);
    e.state = 'bounced';
    if (was !== 'pending') a.status.push({ id: e.msg, state: 'pending' });
    return a;
  }

  /**
   * chat.js sent a ping with id pid now (its timer fired).
   * @param {string} pid
   */
  probe(pid) {
    this.timer = false;
    this.ping = { pid, seq: ++this.seq };
  }

  /**
   * The ping pid was answered by the service.
   * @param {string} pid @param {number} round the current round
   */
  answered(pid, round) {
    const a = act();
    if (!this.ping || this.ping.pid !== pid) return a;
    const upTo = this.ping.seq;
    this.ping = null;
    this.failures = 0;
    if (this.away) {
      this.away = false;
      a.down = false;
    }
    // Everything before the ping that did not bounce is with the service.
    const done = new Set();
    const late = new Set();
    for (const e of this.entries) {
      if (e.seq < upTo && e.state !== 'bounced') {
        done.add(e.msg);
        if (e.state === 'resent') late.add(e.msg);
      }
    }
    // A message is delivered when all its stanzas are.
    for (const e of this.entries) if (!(e.seq < upTo && e.state !== 'bounced')) done.delete(e.msg);
    this.entries = this.entries.filter((e) => !done.has(e.msg));
    for (const id of done) a.status.push({ id, state: 'delivered', late: late.has(id) });
    // The service is back: what bounced goes again, the same bytes.
    const failed = new Set();
    for (const e of this.entries) {
      if (e.state !== 'bounced') continue;
      if (e.round !== round) {
        failed.add(e.msg);
        continue;
      }
      e.state = 'resent';
      e.tries++;
      e.sid = this.sid();
      e.seq = ++this.seq;
      a.resend.push({ sid: e.sid, body: e.body });
    }
    for (const id of failed) this.fail(id, a);
    if (this.entries.length) {
      a.probeIn = this.confirmAfter;
      this.timer = true;
    }
    return a;
  }

  /**
   * The ping pid bounced: the service is away.
   * @param {string} pid
   */
  probeFailed(pid) {
    const a = act();
    if (!this.ping || this.ping.pid !== pid) return a;
    const upTo = this.ping.seq;
    this.ping = null;
    this.wentAway(a);
    // Sent while it was up, neither bounced nor confirmed: in doubt.
    const doubt = new Set();
    for (const e of this.entries) if (e.seq < upTo && e.state !== 'bounced') doubt.add(e.msg);
    this.entries = this.entries.filter((e) => !doubt.has(e.msg));
    for (const id of doubt) a.status.push({ id, state: 'unconfirmed' });
    this.failures++;
    a.probeIn = this.backoff();
    this.timer = true;
    return a;
  }

  /**
   * The XMPP session is gone. Nothing of it can be confirmed or sent again
   * (the next session has a fresh AKE): what bounced failed, what was not
   * confirmed is in doubt.
   */
  lost() {
    const a = act();
    const seen = new Set();
    for (const e of this.entries) {
      if (seen.has(e.msg)) continue;
      seen.add(e.msg);
      a.status.push({ id: e.msg, state: this.stateOf(e.msg) === 'pending' ? 'failed' : 'unconfirmed' });
    }
    this.entries = [];
    this.ping = null;
    this.timer = false;
    this.failures = 0;
    this.away = false;
    return a;
  }

  // ---- inner steps ----

  /** @param {Act} a */
  wentAway(a) {
    if (this.away) return;
    this.away = true;
    a.down = true;
    if (!this.ping && !this.timer) {
      a.probeIn = this.backoff();
      this.timer = true;
    }
  }

  /** The delay before the next ping while the service is away. */
  backoff() {
    const d = Math.min(this.max, this.base * 2 ** Math.min(this.failures, 30));
    return Math.round(d * (0.5 + this.random()));
  }

  /** @param {number} msg */
  stateOf(msg) {
    return this.entries.some((e) => e.msg === msg && e.state === 'bounced') ? 'pending' : 'out';
  }

  /** @param {number} msg @param {Act} a */
  fail(msg, a) {
    this.entries = this.entries.filter((e) => e.msg !== msg);
    a.status.push({ id: msg, state: 'failed' });
  }
}
