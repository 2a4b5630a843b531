// @ts-check
// Taking a chat back after the XMPP session was lost, as a pure state
// machine: no DOM, no network, no storage. chat.js keeps the secret in
// sessionStorage (never localStorage: it is good for this browser tab
// only) and does what the answers say.
//
// The chat service gives each chat a resumption secret: at least 128
// random bits as base64url, in the `resume` attribute of a status element,
// once each time it makes a new one. It keeps only a hash of it. When the
// widget has to log in again (the BOSH session is gone: a network drop
// longer than the server's BOSH timeout, a laptop that slept, an attach
// that failed after a reload), the first stanza of the new session is
//
//	<message to='<skin>@D' type='chat'><resume xmlns='urn:otrdesk:0' secret='S'/></message>
//
// and the service either moves the chat (same alias, same operator, same
// transcript on the page) to the new address and answers with the chat's
// status carrying a new secret (each secret works once), or answers an
// error (item-not-found: wrong, used, ended, blocked) and starts nothing.
// Either way the widget runs a fresh AKE: the new session is a new
// round. On a refusal the chat the widget goes on with is a new one, and
// the visitor is told so.
//
// A reload or a navigation attaches to the same BOSH session and needs
// none of this.

// What the service makes is 24 characters; accept 128 bits and more.
const SECRET = /^[A-Za-z0-9_-]{22,64}$/;

/** @param {unknown} s */
export function validSecret(s) {
  return typeof s === 'string' && SECRET.test(s);
}

export class Resume {
  /** @param {string} [secret] the secret kept from before a reload */
  constructor(secret = '') {
    this.secret = validSecret(secret) ? secret : '';
    this.waiting = false; // a resume request is out, not answered yet
  }

  /**
   * A status element's resume attribute (null when it has none). Returns
   * true when the secret to keep changed.
   * @param {string|null} attr
   */
  offered(attr) {
    if (!validSecret(attr) || attr === this.secret) return false;
    this.secret = /** @type {string} */ (attr);
    return true;
  }

  /**
   * A new XMPP login (not an attach to the old session) is up. Returns the
   * secret to present before anything else, or '' when there is no chat to
   * take back (none started, or it ended).
   * @param {{started: boolean, ended: boolean}} chat
   */
  login({ started, ended }) {
    this.waiting = false;
    if (!started || ended || !this.secret) return '';
    this.waiting = true;
    return this.secret;
  }

  /**
   * What came back from the service while a request is out: 'status' (a
   * status element: the chat was taken back), 'error' (the answer to the
   * request: refused) or 'away' (the server bounced the request: the
   * service is not there, it never saw the secret). Returns 'resumed',
   * 'refused', 'retry' (present the same secret again once the service is
   * back: login() again) or '' (nothing was asked).
   * @param {'status'|'error'|'away'} kind
   */
  answer(kind) {
    if (!this.waiting) return '';
    this.waiting = false;
    if (kind === 'status') return 'resumed';
    if (kind === 'away') return 'retry';
    this.secret = ''; // it will never work again
    return 'refused';
  }

  /** The chat ended: nothing to take back any more. */
  end() {
    this.secret = '';
    this.waiting = false;
  }
}
