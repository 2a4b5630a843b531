// Package keyfile reads and writes the files in which XMPP clients and
// OTR libraries keep OTR keys, and knows where each client looks for them.
// It is called keyfile, not after a client or a library, because its one
// job is the on-disk forms of keys: the keys themselves, their
// fingerprints and the protocol live in package otr, and nothing here
// speaks OTR.
//
// Formats:
//
//	otr.private_key     libotr's libgcrypt S-expression (privkeys (account (name ..)
//	                    (protocol ..) (private-key (dsa (p #..#) (q ..) (g ..) (y ..) (x ..))))...);
//	                    PrivateKeys keeps the text, so changing one account leaves the
//	                    others byte for byte; an account is written exactly as libotr 4.1.1
//	                    writes it (hex MPIs upper-case, 00-prefixed when the top bit is set)
//	otr.instance_tags   a "# WARNING..." comment, then "account\tprotocol\t%08x" lines
//	                    (ReadInstanceTags, WriteInstanceTags)
//	otr.fingerprints    "username\taccount\tprotocol\t<40 hex>\ttrust" lines
//	                    (ReadFingerprints, WriteFingerprints)
//	otr.js / potr       base64 of SHORT 0x0000 then MPIs p, q, g, y, x, the bytes of
//	                    otr.js packPrivate(), python-potr serializePrivateKey() and
//	                    x/crypto/otr Serialize() (MarshalOTRJS, ParseOTRJS); the same
//	                    without x is the bare public form (MarshalPublic, ParsePublic),
//	                    the public_key of a skin in the admin API
//	key bundle          age (scrypt passphrase, ASCII armor) around a header line naming
//	                    the skins and the fingerprint, then the otr.private_key text
//	                    (WriteBundle, ReadBundle; left out of js/wasm builds, where age
//	                    would add about 1 MB)
//
// Clients (Protocol, Path): Pidgin files keys under protocol id
// prpl-jabber in ~/.purple/otr.private_key; Profanity under xmpp in
// $XDG_DATA_HOME/profanity/otr/<jid with @ as _at_>/keys.txt; mcabber under
// jabber in ~/.mcabber/otr/<jid>.key. Each looks a key up by the account's
// bare JID exactly as the client names the account (CheckAccount).
//
// Encode writes a key in any of the formats `otrdesk keys generate` offers;
// Read reads whichever of them a file holds. Every reader says what its
// input is not and why (ErrNotPrivateKeyFile, ErrBadPrivateKey,
// ErrNotInstanceTagFile, ErrNotFingerprintFile, ErrNotBundle), never puts a
// digit of a key into an error, and never panics; each has a fuzz target
// seeded with real libotr output.
package keyfile
