// Package otr is otrdesk's own implementation of Off-the-Record Messaging
// version 3 (with version 2 where libotr still speaks it), checked against
// libotr 4.1.1 — the library inside Pidgin, Profanity and mcabber. The spec
// is Protocol-v3.html (Debian package libotr5,
// /usr/share/doc/libotr5/Protocol-v3.html); where libotr, otr.js and
// python-potr differ from a naive reading of it, the comments at the
// place in question say so. The
// package does no I/O except through readers and writers it is given, and
// never logs.
//
// # Wire forms in an XMPP body
//
// Classify says what a body is without allocating, decoding at most the
// header of an encoded message, and following libotr's own precedence:
//
//	fragment      "?OTR|" sender "|" receiver "," k "," n "," piece ","   (v3, checked first)
//	              "?OTR," k "," n "," piece ","                          (v2)
//	encoded       "?OTR:" base64(message) "."     header: version SHORT, type BYTE,
//	              and for v3 sender and receiver instance tags (INT each)
//	query         "?OTRv23?" (libotr adds an HTML explanation after it)
//	error         "?OTR Error:" text
//	tagged        plaintext with the whitespace tag (16-byte base, 8 bytes per version)
//	plaintext     anything else without "?OTR"
//	unknown       "?OTR" followed by none of the above; libotr drops it
//
// Encoded message types: DH-Commit 0x02, DH-Key 0x0a, Reveal Signature 0x11,
// Signature 0x12 (the AKE) and Data 0x03. QueryMessage, WhitespaceTag,
// ErrorMessage and EncodeMessage build these forms; DecodeMessage undoes
// EncodeMessage. SplitMessage fragments an encoded message for a maximum
// size exactly as libotr does ("?OTR|%08x|%08x,%05hu,%05hu,piece,");
// ParseFragment reads a fragment (also otr.js's unpadded tags and receiver
// tag 0); a Reassembler joins fragments per sender instance under hard
// bounds (n, total bytes, age of an incomplete set, number of senders),
// discards fragments addressed to another instance, and forgets a
// sender's incomplete set when that sender's next message is not a
// fragment.
//
// # Keys and fingerprints
//
// Long-term keys are DSA-1024/160 (GenerateKey, with fresh parameters as
// libotr makes them; GenerateEphemeralKey, on fixed published parameters
// with a single exponentiation, for visitors). A public key travels as
// SHORT 0x0000 then MPIs p, q, g, y (PublicKey.Bytes); its fingerprint is
// SHA-1 over the MPIs without the type: bytes inside a program
// (Fingerprint), 40 upper-case hex digits between programs
// (Fingerprint.MarshalText), five groups of eight upper-case hex digits
// for people (Fingerprint.String), 40 lower-case hex digits in libotr's
// fingerprints file (Fingerprint.Hex). PrivateKey.PrivateBytes is the key
// with x, the form the engine's exported state holds.
//
// The files clients keep keys in (libotr's otr.private_key, otr.js's
// base64, otrdesk's age bundles) are package keyfile's; this package only
// speaks the protocol.
//
// # Conversations
//
// A Conversation is one side of an OTR session with one peer: it runs the
// AKE, encrypts and decrypts Data messages, answers queries, whitespace
// tags and errors according to its Policy, tracks the peer's instances,
// and runs the Socialist Millionaires' Protocol. It does no I/O: Receive
// takes a body and returns what to show, what to send and what happened.
//
// # Tests
//
// Tests run against libotr 4.1.1 through internal/libotrtest (C helpers
// compiled with gcc against Debian's libotr5-dev): our classification of a
// recorded libotr conversation (v3 and v2, with and without fragments)
// matches libotr's, our fragments are libotr's byte for byte, and libotr is
// the peer of our Conversation. Differential tests feed thousands of
// systematic variations of bodies and fragment sequences to
// both libotr and this package (wire_mutation_test.go).
package otr
