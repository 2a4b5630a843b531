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
