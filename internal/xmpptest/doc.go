// Package xmpptest runs private XMPP servers for otrdesk's integration tests,
// benchmarks and demo, and gives them small c2s and component clients.
//
// # Servers
//
// StartProsody (Debian prosody 0.12) and StartEjabberd (Debian ejabberd
// 23.01) each start one server on 127.0.0.1 with:
//
//   - example.org: accounts made with Register, c2s with STARTTLS (a
//     throwaway self-signed ECDSA certificate generated in Go), SASL
//     SCRAM-SHA-1 and PLAIN, carbons (XEP-0280), message archive (XEP-0313,
//     everything archived unless hinted no-store), ping, disco;
//   - guest.example.org: SASL ANONYMOUS, as the widget's visitors use;
//   - one XEP-0114 component per Options.Components entry (domain → secret),
//     all on one component port;
//   - BOSH (XEP-0124/0206) at BOSHURL, http://127.0.0.1:PORT/http-bind,
//     answering CORS requests from any origin.
//
// No rate limits, no offline storage (it would replay old messages into
// later tests), no s2s. StartProsody and StartEjabberd (for programs, such as
// the demo) or Prosody and Ejabberd (for tests: t.Cleanup registered, a
// missing binary is t.Fatal naming the Debian package to install) give a
// *Server; Restart stops it and starts
// it again on the same ports with the same data; Close stops it and removes
// the temporary directory. Start a server once per test function and share
// it between subtests: Prosody starts in ~0.2 s, ejabberd in 2–10 s.
//
// Start-up, in order:
//
//	instance dir (Options.Dir or a new temp dir)
//	 ├── certs/cert.pem, key.pem      throwaway certificate for all domains
//	 ├── prosody.cfg.lua | ejabberd.yml (+ ejabberdctl.cfg, inetrc)
//	 ├── data/ | db/                  accounts, archive (kept by Restart)
//	 └── prosody.log | logs/ejabberd.log, <kind>.out (stdout and stderr)
//	free ports: listen on 127.0.0.1:0, note the port, close
//	start the server, then poll (20 ms, bounded: 30 s Prosody, 90 s ejabberd):
//	  the log of this start shows no bind failure (and, for ejabberd, says
//	  "is started in the node"), c2s offers STARTTLS and presents this
//	  instance's certificate, the component port accepts, BOSH answers.
//	a port taken between picking and binding: the first start retries with
//	new ports (up to three times).
//
// The configurations are commented text/template files embedded in the
// package, prosody.cfg.lua.tmpl and ejabberd.yml.tmpl. Their blocks marked
// ATTACH (component, anonymous host, BOSH) are what an existing server needs
// for otrdesk; the README quotes them.
//
// # Prosody
//
// `prosody -F --config FILE` with run_as_root, so it runs as the test's
// user with everything in the instance directory. Accounts are made with
// `prosodyctl --config FILE register` (~0.1 s), which writes the account file
// the running server reads at login. Stop is SIGTERM (~1 s with clients
// connected: Prosody waits for their streams to close).
//
// # ejabberd
//
// Debian's ejabberdctl, started as root, runs the Erlang VM as the ejabberd
// user through su, in a session of its own. So the instance directory is
// made under the system temp directory (an Options.Dir whose parents the
// ejabberd user cannot traverse, such as t.TempDir(), is refused with an
// error saying so) and chowned to that user, and the harness runs
//
//	ejabberdctl --config-dir DIR --logs DIR/logs --spool DIR/db foreground
//
// with an ejabberdctl.cfg in DIR that sets a unique node name, a random
// cookie, inet_dist_use_interface 127.0.0.1 and ERL_DIST_PORT (a free port):
// distribution listens on that loopback port only and no epmd is started
// at all, so none is left behind and none is shared with a system ejabberd.
// Stop sends SIGTERM to the VM by the pid it writes (EJABBERD_PID_PATH):
// Erlang stops cleanly and sh, su and ejabberdctl exit after it. Signalling
// ejabberdctl instead would orphan the VM. The VM's helpers
// (erl_child_setup) outlive it by a moment; where PID 1 does not reap
// orphans, the harness makes itself a child subreaper and reaps them by
// name. Neither our process group nor Pdeathsig reach the VM, so a watchdog
// shell holding the read end of a pipe signals it if the harness's process
// dies without stopping it (a test binary killed by -timeout). Accounts are registered with ejabberd's register command over
// mod_http_api (loopback only), ~60 ms instead of ~1.5 s for an ejabberdctl
// call, which is the fallback.
//
// # Clients
//
// Client is written on encoding/xml, crypto/tls and mellium.im/sasl rather
// than on a mellium.im/xmpp session, so that a test sees every byte the
// server sent and no handler can deadlock it. Dial: stream header,
// features, STARTTLS (any certificate accepted), SASL (SCRAM-SHA-1, else
// PLAIN; -PLUS variants never, ejabberd 23.01 gets them wrong on TLS 1.3),
// stream restart, resource binding, initial presence. DialAnonymous does the
// same with SASL ANONYMOUS on guest.example.org. DialComponent does the
// XEP-0114 handshake and returns the same Client type (stanzas it sends
// must carry from).
//
// A goroutine then reads top-level elements into Stanza values (name,
// type, from, to, id, byte-exact body, child names and the raw element) and
// queues them; Next takes the first queued stanza that matches, waiting
// when none does, and leaves the others queued in order. Pending and Ping
// (a round trip is a barrier) let a test assert that nothing arrived. Pings
// and disco#info requests to the client are answered automatically. When
// the server closes the stream, Next returns the read error once the queue
// has nothing matching.
//
// BOSHAnonymous logs in over BOSH as the widget does (session, SASL
// ANONYMOUS, restart, bind), optionally with an Origin header whose CORS
// answer it checks.
package xmpptest
