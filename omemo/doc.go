// Package omemo is otrdesk's OMEMO engine: OMEMO as Gajim, Conversations,
// Dino, Monal and Profanity speak it today, XEP-0384 version 0.3 under the
// namespace eu.siacs.conversations.axolotl (not the later urn:xmpp:omemo:2,
// which those clients do not all speak). It sits beside package otr as the
// second end-to-end protocol between a website visitor and an operator.
// Like otr it does no I/O and never logs: it turns elements into state and
// state into elements, and the caller moves them.
//
// # What travels
//
// Each account publishes, over PEP, the list of its devices and one bundle
// per device:
//
//	node eu.siacs.conversations.axolotl.devicelist        DeviceList
//	  <list xmlns='eu.siacs.conversations.axolotl'><device id='31415'/></list>
//	node eu.siacs.conversations.axolotl.bundles:31415     Bundle
//	  identityKey, signedPreKeyPublic (+ signedPreKeyId, signedPreKeySignature),
//	  prekeys/preKeyPublic (+ preKeyId) — Curve25519 keys, base64 of 33 bytes
//
// and a message is an <encrypted/> element in the <message/> (Encrypted):
//
//	<encrypted xmlns='eu.siacs.conversations.axolotl'>
//	  <header sid='sender device'>
//	    <key rid='recipient device' [prekey='true']>Signal message</key>  one per device
//	    <iv>12 bytes</iv>
//	  </header>
//	  <payload>AES-128-GCM ciphertext, without its tag</payload>
//	</encrypted>
//
// ParseDeviceList, ParseBundle and ParseEncrypted read these under hard
// bounds (element size, devices, prekeys, keys, key and payload sizes)
// and never panic; the Marshal methods write them. The XML and the
// fingerprint live in package omemo/wire, which links nothing but the
// standard library: otrdesk's component and server move and check these
// elements through it and never link the Signal library below. This
// package names the same types and functions, so the engine's callers
// need only it.
//
// # A conversation
//
//	visitor device V                               operator device O
//	                <-- O's bundle (PEP, or handed over by the component)
//	Encrypt(text, O + bundle):
//	  X3DH on O's identity key, signed prekey and one
//	  random one-time prekey; payload key+tag (32 bytes)
//	  in a prekey message for O
//	                --- <encrypted> key prekey='true' -->
//	                                               Decrypt: session built, the
//	                                               one-time prekey used up and
//	                                               replaced (Republish the bundle)
//	                <-- <encrypted> (a reply, or KeyTransport) ---
//	Decrypt: the session is confirmed; from now on
//	both sides send normal Signal messages (Double Ratchet)
//
// Encrypt goes to every device given at once (an operator's desktop and
// phone both get the message). Decrypt reports the sender's device and the
// fingerprint of its identity key.
//
// # Whose code is what
//
// go.mau.fi/libsignal (v0.2.1, the Signal protocol library of the mautrix
// bridges; it builds for GOOS=js GOARCH=wasm) does X3DH, the Double
// Ratchet and the Signal message format: the same protocol version 3 as
// libsignal-protocol-java in Conversations and python-axolotl in Gajim.
// This package does the rest: the XML, the payload encryption (crypto/aes
// and crypto/cipher), the device and its prekeys, the stores libsignal
// needs (in memory), bounds, and checks on Signal messages before
// libsignal's decoders see them (they index their input unchecked).
// Two costs come with libsignal. Its licence is the GPL, version 3: a
// program linking this package is distributed under its terms. And its
// serialize package (imported by its session package) pulls in the
// protobuf runtime and encoding/json: compiled for js/wasm, this package
// adds about 1.1 MB brotli to a program, nearly all of it that runtime.
//
// libsignal changes a session while it tries a message and saves a peer's
// identity before the message proves itself; so every Encrypt and Decrypt
// runs on a copy-on-write view of the device, kept only when the whole
// operation succeeded: a forged, altered or replayed message changes
// nothing.
//
// # Trust
//
// A device keeps the first identity key each peer device shows, or the
// one Pin gave it, and refuses any other (ErrIdentityChanged). Whether a
// key is the one the operator's client shows is decided outside: against
// a Fingerprint, the 32 bytes of the Curve25519 key, shown in eight groups
// of eight hex digits as the clients show it.
//
// # Tests
//
// Two Devices talk in memory (device_test.go), and a Device talks to
// python-axolotl, the library under Gajim's OMEMO plugin in Debian 12
// (Debian package python3-axolotl), through testdata/axolotl_peer.py,
// which writes its own XML and payload as that plugin does: sessions built
// from bundles in both directions, many messages, bursts out of order, a
// lost message, replays, prekeys used up and replaced, an identity key
// that changed refused on both sides. It also talks to python-omemo with
// its oldmemo backend (Debian python3-oldmemo, the library under
// slixmpp-omemo) through testdata/oldmemo_peer.py, whose XML is
// oldmemo.etree's, checked against the XEP's schema; bench_test.go
// compares the costs with both. Every parser and Decrypt have fuzz
// targets.
//
// # Left to the component and the widget
//
// Serving PEP for visitor aliases (device list and bundle of the visitor's
// device under guest-<id>@D), fetching an operator's device list and
// bundles, choosing the operator devices the skin trusts, EME and the
// fallback body are the component's (package component, omemo.go, on
// omemo/wire); the wasm glue in the widget's worker is web/wasm/omemo, and
// Export and Restore (state.go) carry a Device across page loads.
package omemo
