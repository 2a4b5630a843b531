package web_test

// Browser tests of pages that pin the admin's signer (data-signer) instead
// of fingerprints: real headless Chromium, real Prosody, the scripted
// operator holding the skin key, the genuine otrdesk HTTP side behind a
// front that can serve other bytes at /skins/shop.keyring (a stale or
// hostile service). The page is the pinned snippet as `otrdesk snippet
// --signer` prints it, under the strict CSP, and it never changes.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/hostile"
	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// The widget's sentences for a refused keyring (web/src/keyring.js).
var keyringSentence = map[string]string{
	"malformed":  "This chat's keys could not be verified: the signed list of keys is missing or damaged.",
	"signature":  "This chat's keys could not be verified: the list of keys is not signed by the key this page trusts.",
	"other-skin": "This chat's keys could not be verified: the list of keys was signed for another chat.",
	"expired":    "This chat's keys could not be verified: the list of keys has expired.",
	"old-serial": "This chat's keys could not be verified: the list of keys is older than one this browser has already seen.",
}

// signerStack is a stack whose page pins a signer.
type signerStack struct {
	*stack
	signer   ed25519.PrivateKey
	frontURL string // what the page loads the widget from
	page     string // the page's URL

	mu       sync.Mutex
	override []byte // served at /skins/shop.keyring instead of the store's, when set
	fetches  int    // keyring requests seen
}

func newSignerStack(t *testing.T, skins []store.Skin, ops []opSpec) *signerStack {
	t.Helper()
	s := &signerStack{stack: newStack(t, skins, ops, func(c *component.Config) { c.MaxChatsPerOperator = 50 })}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s.signer = priv
	w, err := web.LoadWidget(assets(t))
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(s.widgetURL)
	genuine := httputil.NewSingleHostReverseProxy(target)
	fl := listen(t)
	s.frontURL = "http://" + fl.Addr().String()
	serve(t, fl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/skins/shop.keyring" {
			s.mu.Lock()
			s.fetches++
			over := s.override
			s.mu.Unlock()
			if over != nil {
				w.Header().Set("Access-Control-Allow-Origin", "*")
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Write(over)
				return
			}
		}
		genuine.ServeHTTP(w, r)
	}))

	bosh := s.srv.BOSHURL
	if i := strings.Index(bosh[len("http://"):], "/"); i >= 0 {
		bosh = bosh[:len("http://")+i]
	}
	signerAttr := keyring.FormatSigner(priv.Public().(ed25519.PublicKey))
	pl := listen(t)
	s.page = "http://localhost:" + portOf(pl.Addr()) + "/"
	serve(t, pl, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if blankPage(rw, r) {
			return
		}
		rw.Header().Set("Content-Security-Policy", fmt.Sprintf(
			"default-src 'none'; script-src %s 'wasm-unsafe-eval'; worker-src blob:; connect-src %s %s; style-src 'self'; base-uri 'none'",
			s.frontURL, s.frontURL, bosh))
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example shop</title></head>
<body><h1>Example shop</h1>
<script src="%s/widget-%s.js" integrity="%s" crossorigin="anonymous"
        data-skin="shop" data-signer="%s" async></script>
</body></html>`, s.frontURL, w.Hash, w.SRI, html.EscapeString(signerAttr))
	}))
	return s
}

// sign signs a keyring of skin with serial listing the keys, valid for
// valid (negative: already expired), with the stack's signer or another.
func (s *signerStack) sign(skin string, serial uint64, valid time.Duration, by ed25519.PrivateKey, keys ...*otr.PrivateKey) []byte {
	s.t.Helper()
	if by == nil {
		by = s.signer
	}
	k := keyring.Keyring{Skin: skin, Serial: serial, NotAfter: time.Now().Add(valid).Truncate(time.Second)}
	for _, key := range keys {
		k.Keys = append(k.Keys, keyring.Key{Kind: keyring.KindOTR, Value: strings.ToUpper(key.PublicKey.Fingerprint().Hex())})
	}
	b, err := keyring.Sign(k, by)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// publish stores a keyring the way `otrdesk keyring sign` does.
func (s *signerStack) publish(b []byte) {
	s.t.Helper()
	if _, err := s.st.PutKeyring(b); err != nil {
		s.t.Fatalf("storing the keyring: %v", err)
	}
}

func (s *signerStack) serveInstead(b []byte) {
	s.mu.Lock()
	s.override = b
	s.mu.Unlock()
}

// duty puts one operator on duty and the others off, and waits for the
// component to confirm each change.
func (s *signerStack) duty(on string) {
	s.t.Helper()
	for user, bot := range s.bots {
		cmd := "off"
		if user == on {
			cmd = "on"
		}
		ctx, cancel := context.WithTimeout(s.ctx, waitLong)
		if err := bot.Command(ctx, cmd); err != nil {
			cancel()
			s.t.Fatal(err)
		}
		if _, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Service }); err != nil {
			cancel()
			s.t.Fatalf("%s %s: no answer from the component: %v", user, cmd, err)
		}
		cancel()
	}
}

// openChat starts a new chat on the page (ending the browser's previous
// one, if any) and starts watching the page for the verified sentence.
func (s *signerStack) openChat(b *browser) {
	s.t.Helper()
	freshVisit(b, s.page)
	b.eval(watchJS)
	b.clickLauncher()
}

// freshVisit loads page as a new visitor of the same browser: the chat of
// an earlier visit is not resumed (its session storage is cleared from a
// page of the site without the widget, after the widget saved it on
// leaving), while local storage, and so the highest keyring serial seen,
// stays.
func freshVisit(b *browser, page string) {
	b.t.Helper()
	b.do("leaving for a page without the chat", chromedp.Navigate(page+"blank"))
	b.eval(`(() => { sessionStorage.clear(); return ''; })()`)
	b.open(page)
}

// blankPage serves the site's page without the chat at /blank.
func blankPage(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path != "/blank" {
		return false
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example shop</title></head><body><p>Another page.</p></body></html>`)
	return true
}

// refused checks that the verified sentence was nowhere in the page
// since openChat, and that the widget said why the keys were refused.
func (s *signerStack) refused(b *browser, reason string) {
	s.t.Helper()
	b.waitFor("the words for "+reason, `(`+pageText+`).includes(`+jsString(keyringSentence[reason])+`)`)
	b.waitSentence(sentUnverified)
	var w struct {
		VerifiedAt int `json:"verifiedAt"`
	}
	if err := json.Unmarshal([]byte(b.eval(`JSON.stringify(window.__hostile)`)), &w); err != nil {
		b.failf("reading the page watch: %v", err)
	}
	if w.VerifiedAt >= 0 || strings.Contains(b.eval(pageText), sentVerified) {
		b.failf("%s: the page showed %q", reason, sentVerified)
	}
	for other, words := range keyringSentence {
		if other != reason && strings.Contains(b.eval(pageText), words) {
			b.failf("%s: the page also says %q", reason, words)
		}
	}
}

// A page that pins only the signer verifies the key its keyring lists;
// after a rotation the same page verifies the new key; after a revocation
// the old key is no longer verified; and a service that then replays the
// older keyring (which still lists the old key) is refused by its serial.
func TestKeyringSignerPinRotateRevoke(t *testing.T) {
	k1, k2 := key(t, "skin"), key(t, "rotated")
	ada := opSpec{user: "ada", name: "Ada", key: k1}
	bob := opSpec{user: "bob", name: "Bob", key: k2}
	s := newSignerStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, k1, ada, bob)}, []opSpec{ada, bob})
	s.duty("ada")
	s.waitAvailable("shop")
	first := s.sign("shop", 10, time.Hour, nil, k1)
	s.publish(first)
	b := newBrowser(t)

	s.openChat(b)
	b.waitSentence(sentVerified)
	b.write("before the rotation")
	nextMessage(t, s.ctx, s.bots["ada"], "before the rotation")
	b.screenshot("signer-verified")

	// Rotation: the skin's new key is bob's; the admin signs a keyring
	// with it. The page is not touched.
	if _, err := s.st.UpdateSkin("shop", func(sk *store.Skin) error {
		sk.Keys[0].Retired = time.Now()
		sk.Keys = append([]store.SkinKey{{Fingerprint: k2.PublicKey.Fingerprint(), PublicKey: k2.PublicKey.Bytes(), Created: time.Now()}}, sk.Keys...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.publish(s.sign("shop", 11, time.Hour, nil, k2, k1))
	s.duty("bob")
	s.openChat(b)
	b.waitSentence(sentVerified)
	b.write("after the rotation")
	nextMessage(t, s.ctx, s.bots["bob"], "after the rotation")

	// Revocation: the next keyring leaves the old key out. Ada, who still
	// holds it, is no longer verified.
	s.publish(s.sign("shop", 12, time.Hour, nil, k2))
	s.duty("ada")
	s.openChat(b)
	b.waitSentence(sentUnverified)
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Fatalf("the revoked key is still verified")
	}
	b.screenshot("revoked-key")

	// A service that replays the keyring of serial 10 (validly signed,
	// unexpired, listing the revoked key) is refused by this browser.
	s.serveInstead(first)
	s.openChat(b)
	s.refused(b, "old-serial")
	b.screenshot("replayed-serial")
}

// Each keyring a page must not trust gives the not-verified state with its
// own words. Every one of them lists the operator's key, so a widget that
// skipped the check would show the verified sentence.
func TestKeyringRefusals(t *testing.T) {
	k1 := key(t, "skin")
	ada := opSpec{user: "ada", name: "Ada", key: k1}
	s := newSignerStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, k1, ada)}, []opSpec{ada})
	s.waitAvailable("shop")
	_, mallory, _ := ed25519.GenerateKey(rand.Reader)
	good := s.sign("shop", 20, time.Hour, nil, k1)
	tampered := bytes.Replace(good, []byte("serial 20\n"), []byte("serial 29\n"), 1)
	if bytes.Equal(tampered, good) {
		t.Fatal("the tampering did not apply")
	}
	cases := []struct {
		name, reason string
		served       []byte
	}{
		{"expired", "expired", s.sign("shop", 20, -time.Minute, nil, k1)},
		{"signed by another signer", "signature", s.sign("shop", 20, time.Hour, mallory, k1)},
		{"one byte changed", "signature", tampered},
		{"another skin's keyring", "other-skin", s.sign("bank", 20, time.Hour, nil, k1)},
		{"not a keyring", "malformed", []byte(`{"fingerprints":["` + k1.PublicKey.Fingerprint().String() + `"]}`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.serveInstead(c.served)
			b := newBrowser(t) // a browser that has seen no keyring
			s.openChat(b)
			s.refused(b, c.reason)
			b.screenshot(strings.ReplaceAll(c.name, " ", "-"))
		})
	}
	// The genuine keyring, for contrast: the same stack verifies.
	s.serveInstead(good)
	b := newBrowser(t)
	s.openChat(b)
	b.waitSentence(sentVerified)
}

// Benchmark for the closing note: the keyring's bytes on the wire and the
// widget's time to verify it in Chromium (median of 20), measured in the
// page with the module the widget uses.
func TestKeyringVerifyTimeInChromium(t *testing.T) {
	k1 := key(t, "skin")
	ada := opSpec{user: "ada", name: "Ada", key: k1}
	s := newSignerStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, k1, ada)}, []opSpec{ada})
	s.waitAvailable("shop")
	b := newBrowser(t)
	b.open(s.page)
	pub := keyring.FormatSigner(s.signer.Public().(ed25519.PublicKey))
	for _, n := range []int{1, 3} {
		keys := []*otr.PrivateKey{k1, key(t, "rotated"), key(t, "other")}[:n]
		text := s.sign("shop", 30, time.Hour, nil, keys...)
		// WebCrypto Ed25519 as keyring.js calls it, on the page's origin.
		got := b.evalAsync(`(async () => {
		  const text = ` + jsString(string(text)) + `;
		  const pub = Uint8Array.from(atob(` + jsString(strings.TrimPrefix(pub, keyring.SignerPrefix)) + `), (c) => c.charCodeAt(0));
		  const i = text.indexOf('signature ');
		  const body = new TextEncoder().encode(text.slice(0, i));
		  const sig = Uint8Array.from(atob(text.slice(i + 10, -1)), (c) => c.charCodeAt(0));
		  // performance.now() is coarse (0.1 ms) on a page that is not
		  // cross-origin isolated: each of the 20 samples is the mean of 10.
		  const times = [];
		  for (let j = 0; j < 20; j++) {
		    const t0 = performance.now();
		    for (let n = 0; n < 10; n++) {
		      const k = await crypto.subtle.importKey('raw', pub, {name: 'Ed25519'}, false, ['verify']);
		      if (!(await crypto.subtle.verify({name: 'Ed25519'}, k, sig, body))) return 'did not verify';
		    }
		    times.push((performance.now() - t0) / 10);
		  }
		  times.sort((a, b) => a - b);
		  return ((times[9] + times[10]) / 2).toFixed(3);
		})()`)
		t.Logf("keyring with %d key(s): %d bytes; verification in Chromium, median of 20: %s ms", n, len(text), got)
		if got == "did not verify" {
			t.Fatal("Chromium does not verify a keyring the Go package signed")
		}
	}
}

func (b *browser) evalAsync(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.failf("evaluating %.60q: %v", expr, err)
	}
	return v
}

// TestHostileKeyring: the hostile service of hostile_test.go (its own
// component answering the visitor's OTR query with the attacker's key)
// against a page that pins the admin's signer. Whatever keyring it serves
// to vouch for the attacker's key, a forged one, another skin's, an old
// one after the browser saw a newer, or an expired one, the page never
// shows the verified sentence and the attacker reads nothing typed after
// it (the checks of verdict), and the visitor is told why.
func TestHostileKeyring(t *testing.T) {
	_, admin, _ := ed25519.GenerateKey(rand.Reader)
	_, attackerSigner, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(skin string, serial uint64, valid time.Duration, by ed25519.PrivateKey, keys ...*otr.PrivateKey) []byte {
		k := keyring.Keyring{Skin: skin, Serial: serial, NotAfter: time.Now().Add(valid).Truncate(time.Second)}
		for _, key := range keys {
			k.Keys = append(k.Keys, keyring.Key{Kind: keyring.KindOTR, Value: strings.ToUpper(key.PublicKey.Fingerprint().Hex())})
		}
		b, err := keyring.Sign(k, by)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name, reason string
		seen         func(op *otr.PrivateKey) []byte // a keyring the browser saw on an earlier visit, or nil
		served       func(att *otr.PrivateKey) []byte
	}{
		{"forged", "signature", nil, func(att *otr.PrivateKey) []byte { return sign("shop", 99, time.Hour, attackerSigner, att) }},
		{"another skin's", "other-skin", nil, func(att *otr.PrivateKey) []byte { return sign("bank", 99, time.Hour, admin, att) }},
		{"older than seen", "old-serial",
			func(op *otr.PrivateKey) []byte { return sign("shop", 7000000050, time.Hour, admin, op) },
			func(att *otr.PrivateKey) []byte { return sign("shop", 7000000040, time.Hour, admin, att) }},
		{"expired", "expired", nil, func(att *otr.PrivateKey) []byte { return sign("shop", 99, -time.Hour, admin, att) }},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			s := newHostile(t, hostileOpts{answerQueries: true, operatorName: "Ada"})
			var mu sync.Mutex
			served := []byte(nil)
			if tc.seen != nil {
				served = tc.seen(s.opKey)
			}
			target, _ := url.Parse(s.widgetURL)
			service := httputil.NewSingleHostReverseProxy(target)
			fl := listen(t)
			front := "http://" + fl.Addr().String()
			serve(t, fl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/skins/shop.keyring" {
					mu.Lock()
					b := served
					mu.Unlock()
					w.Header().Set("Access-Control-Allow-Origin", "*")
					w.Write(b)
					return
				}
				service.ServeHTTP(w, r)
			}))
			bosh := s.srv.BOSHURL
			if i := strings.Index(bosh[len("http://"):], "/"); i >= 0 {
				bosh = bosh[:len("http://")+i]
			}
			pl := listen(t)
			page := "http://localhost:" + portOf(pl.Addr()) + "/"
			serve(t, pl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if blankPage(w, r) {
					return
				}
				w.Header().Set("Content-Security-Policy", fmt.Sprintf(
					"default-src 'none'; script-src %s 'wasm-unsafe-eval'; worker-src blob:; connect-src %s %s; style-src 'self'; base-uri 'none'",
					front, front, bosh))
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example shop</title></head>
<body><h1>Example shop</h1>
<script src="%s/widget-%s.js" integrity="%s" crossorigin="anonymous"
        data-skin="shop" data-signer="%s" async></script>
</body></html>`, front, s.widget.Hash, s.widget.SRI, html.EscapeString(keyring.FormatSigner(admin.Public().(ed25519.PublicKey))))
			}))
			b := newBrowser(t)
			if tc.seen != nil {
				// An earlier visit, when the service served the newer keyring.
				b.open(page)
				b.clickLauncher()
				b.waitFor("the browser to remember the earlier keyring's serial", `JSON.stringify({...localStorage}).includes('7000000050')`)
			}
			mu.Lock()
			served = tc.served(s.attKey)
			mu.Unlock()
			freshVisit(b, page)
			b.eval(watchJS)
			b.clickLauncher()
			s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 1 })
			b.waitFor("the words for "+tc.reason, `(`+pageText+`).includes(`+jsString(keyringSentence[tc.reason])+`)`)
			c := s.say(b, "keyring-"+tc.reason)
			t.Logf("the message went to: %s", or(s.settle(c), "nobody within "+settleTime.String()))
			w := s.verdict(b)
			s.noVerified(w, "a keyring refused as "+tc.reason)
		})
	}
}

// TestKeyringSignerPinLibotrOperator: the operator is libotr (as in Pidgin)
// holding the skin key; the page pins only the signer, whose keyring lists
// that key. The visitor gets the verified sentence and libotr reads what
// they write.
func TestKeyringSignerPinLibotrOperator(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{Account: "ada@" + xmpptest.Domain, PeerName: "visitor@" + componentDomain})
	fp := otr.Fingerprint(peer.Fingerprint())
	sk := skinWithKey("shop", store.PolicyRequire, nil, opSpec{user: "ada", name: "Ada"})
	sk.Keys = []store.SkinKey{{Fingerprint: fp, Created: time.Now()}}
	s := newSignerStack(t, []store.Skin{sk}, nil)
	signed, err := keyring.Sign(keyring.Keyring{Skin: "shop", Serial: 1, NotAfter: time.Now().Add(time.Hour).Truncate(time.Second),
		Keys: []keyring.Key{{Kind: keyring.KindOTR, Value: strings.ToUpper(fp.Hex())}}}, s.signer)
	if err != nil {
		t.Fatal(err)
	}
	s.publish(signed)

	op := newLibotrOperator(t, s.stack, "ada", peer)
	op.pump("the operator to be available", func() bool { return s.comp.Available("shop") })

	b := newBrowser(t)
	s.openChat(b)
	op.pump("libotr to go secure", func() bool { return op.secure })
	b.waitSentence(sentVerified)
	b.write("hello libotr, via the signer")
	op.pump("libotr to read the visitor", func() bool { return slices.Contains(op.shown, "hello libotr, via the signer") })
	b.screenshot("signer-libotr")
}
