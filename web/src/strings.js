// The sentences a visitor reads. The three security sentences are fixed by
// design §6; the widget shows exactly one of them for the chat's state.

export const VERIFIED = 'This chat uses end-to-end encryption.';
export const UNVERIFIED = "Encrypted, but this operator's key is not the one published for this chat.";
export const PLAINTEXT = 'Not encrypted.';

export const STARTING = 'Setting up encryption…';
export const CONNECTING = 'Connecting…';
export const RECONNECTING = 'Connection lost. Reconnecting…';
export const OFFLINE = 'Nobody is available to chat right now. Please try again later.';
export const ENDED_BY_YOU = 'You ended the chat.';
export const ENDED = 'The chat has ended.';
export const ENCRYPTION_CLOSED = 'The operator closed the encrypted session. Messages will not be sent until encryption is set up again.';
