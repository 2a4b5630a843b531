// Package xmpptest runs private XMPP servers for otrdesk's integration tests
// and demo, and gives tests a small c2s client.
//
// # Servers
//
// StartProsody (Debian prosody 0.12) and StartEjabberd (Debian ejabberd 23.01)
// each start one server on 127.0.0.1 with:
//
//   - example.org: accounts made with Register, c2s with STARTTLS (a
//     throwaway self-signed certificate generated in Go), SASL SCRAM-SHA-1
//     and PLAIN, carbons (XEP-0280), message archive (XEP-0313), ping, disco;
//   - guest.example.org: SASL ANONYMOUS, as the widget's visitors use;
//   - one XEP-0114 component per Options.Components entry, all on one
//     component port;
//   - BOSH (XEP-0124/0206) at BOSHURL (http://127.0.0.1:PORT/http-bind),
//     CORS on.
//
// Ports are free ports picked at start (listen on :0, close, hand to the
// server); readiness is polled with a bounded deadline: a c2s stream to
// example.org must offer STARTTLS, the component port must accept and BOSH
// must answer. Nothing uses the default ports 5222/5269/5280/5347, on which
// a system daemon may run. Restart stops the server and starts it again on
// the same ports with the same data; Close stops it and removes the
// temporary directory.
//
// The configurations are text/template files embedded in the package,
// prosody.cfg.lua.tmpl and ejabberd.yml.tmpl; the blocks marked ATTACH are
// what an existing server needs for otrdesk, and the README quotes them.
//
// # Client
//
// Client is written on encoding/xml, crypto/tls and mellium.im/sasl rather
// than on mellium.im/xmpp's session, so that a test sees every byte the
// server sent: stream header, features, STARTTLS, SASL (ANONYMOUS, else
// SCRAM-SHA-1, else PLAIN; never -PLUS), resource binding, initial
// presence. A goroutine then reads top-level elements and queues them as
// Stanza values (with the raw bytes); Next takes the first queued stanza
// that matches, waiting when none does. Pings and disco#info queries to the
// client are answered automatically.
package xmpptest
