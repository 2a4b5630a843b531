// @ts-check
// The sentences a visitor reads. The three security sentences are fixed
// (tests and documentation outside the widget quote them); the widget shows
// exactly one of them for the chat's state, or MISCONFIGURED when the page's
// pin cannot be read, or STARTING/ENDED when there is no session.

export const VERIFIED = 'This chat uses end-to-end encryption.';
export const UNVERIFIED = "Encrypted, but this operator's key is not the one published for this chat.";
export const PLAINTEXT = 'Not encrypted.';

export const STARTING = 'Setting up encryption…';
export const CONNECTING = 'Connecting…';
export const RECONNECTING = 'Connection lost. Reconnecting…';
export const OFFLINE = 'Nobody is available to chat right now. Please try again later.';
export const ENDED_BY_YOU = 'You ended the chat.';
export const ENDED = 'The chat has ended.';
export const MISCONFIGURED = "This page's chat is set up wrongly, so no operator's key can be verified. Please tell the website owner.";
// The choice to write to an operator whose key is not the published one.
export const CONFIRM = 'Send to an unverified operator';
// The label of the skin's greeting: the website's words, not the widget's.
export const FROM_WEBSITE = 'From the website';

// When the chat service is away (restarting) while the visitor's session
// is up, and how each of the visitor's messages stands meanwhile.
export const SERVICE_AWAY = 'The chat service is not available right now. What you write is kept and sent when it is back.';
export const MSG_PENDING = 'Not delivered yet — will be sent again when the chat service is back';
export const MSG_DELIVERED_LATE = 'Delivered after the chat service came back';
export const MSG_UNCONFIRMED = 'Maybe not delivered: the chat service was interrupted just after it was sent';
export const MSG_FAILED = 'Not delivered';

// Taking the chat back after a new login (the old connection was gone).
export const RESUMING = 'Reconnecting to your chat…';
export const RESUMED = 'Reconnected to the same chat. Encryption is being set up again.';
export const RESUME_REFUSED = 'Your earlier chat could not be continued, so a new chat has started.';
export const NEW_CHAT = 'A new chat has started.';

// While the widget computes a proof-of-work stamp for a new chat.
export const POW_WAITING = 'Waiting for a free place…';
