package web_test

// Browser tests against a hostile otrdesk service (internal/hostile).
//
// The threat: the embedding page and the widget code it loads by SRI are
// trusted; everything the otrdesk service and the XMPP server send is not
// (skin JSON, status elements, operator names, bodies, OTR messages and
// errors, ordering). Each test here runs the genuine widget, loaded by the
// pinned snippet (/widget-<hash>.js with integrity), in real headless
// Chromium against an attacker that owns the service: its own skin JSON on
// its own HTTP server, its own component on the test Prosody in place of
// otrdesk, relaying to the real operator (internal/operator, holding the
// skin key the page pins) and attacking with OTR of its own.
//
// What every test asserts, on real bytes:
//   - the attacker reads nothing the visitor typed (each visitor message
//     carries a unique canary; the attacker tries every body with its own
//     sessions): the page pins a key the attacker does not hold, so it is
//     "require", and the visitor never chooses to write to an unverified
//     operator here; a message typed after the verified sentence was on
//     the page is reported as such;
//   - if the attacker could read anything the visitor typed, the verified
//     sentence was never anywhere in the page (text and attributes, shadow
//     roots included), watched continuously by a MutationObserver for the
//     whole run, not only at the end.
// and then what the visitor should see for that attack.
//
// To run these against another build of the widget (for instance the one
// before a fix, to see the attacks succeed), set OTRDESK_HOSTILE_DIST to
// that build's web/dist.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/internal/hostile"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/web"
)

// settleTime bounds how long a test watches for a visitor's message to
// reach the attacker or the operator. Where the widget is right to hold a
// message, nothing ever arrives, and absence can only be watched for a
// while; a message that leaks arrives within milliseconds on loopback.
const settleTime = 4 * time.Second

// misconfigured matches the widget telling the visitor that the page's pin
// is broken.
const misconfiguredRE = `/misconfigur|set up wrongly|settings are broken|pinned key cannot be read/i`

// skinDoc is the skin JSON the hostile service serves.
type skinDoc struct {
	Title, Greeting, Color, Policy string
	Fingerprints                   []string
	OMEMOFingerprints              []string
}

type hostileOpts struct {
	operator      bool   // the real operator runs and the attacker relays to it
	answerQueries bool   // the attacker answers every OTR query with its own AKE
	operatorName  string // status operator=... sent on the visitor's first body ("" for none)
	skin          skinDoc
	// pin is the page's data-fingerprint; nil means the real operator's
	// key, the pin a correct page carries (with omemo: its OTR key and
	// its OMEMO device's identity key).
	pin *string
	// omemo: the real operator also has one OMEMO device, and the
	// attacker stands in for otrdesk's OMEMO too (hostile.Config.OMEMO).
	omemo bool
}

type hostileStack struct {
	t         *testing.T
	ctx       context.Context
	srv       *xmpptest.Server
	att       *hostile.Attacker
	bot       *operator.Bot // nil without the real operator
	opKey     *otr.PrivateKey
	attKey    *otr.PrivateKey
	widget    web.Widget
	widgetURL string // the hostile service's HTTP side
	pageURL   string // the embedding site
	skin      skinDoc
	pin       string

	mu       sync.Mutex
	canaries []string        // what the visitor typed, in order
	chosen   map[string]bool // canaries the visitor chose to send to an unverified operator
	prior    *watch          // what the page watch saw before a reload
}

func ptr(s string) *string { return &s }

var (
	distOnce sync.Once
	distMem  fs.FS
	distErr  error
)

// hostileAssets is the built widget, copied into memory once per test
// binary so that a rebuild of web/dist while the tests run cannot serve a
// launcher and a chat bundle from different builds.
func hostileAssets(t *testing.T) fs.FS {
	t.Helper()
	var src fs.FS
	if d := os.Getenv("OTRDESK_HOSTILE_DIST"); d != "" {
		src = os.DirFS(d)
	} else {
		src = assets(t)
	}
	distOnce.Do(func() {
		for range 5 {
			if distMem, distErr = snapshotDist(src); distErr == nil {
				return
			}
		}
	})
	if distErr != nil {
		t.Fatal(distErr)
	}
	return distMem
}

// assetName matches the content-hashed names the launcher loads.
var assetName = regexp.MustCompile(`"([a-z_]+-[0-9a-f]{16}\.(?:js|wasm))"`)

func snapshotDist(src fs.FS) (fs.FS, error) {
	m := fstest.MapFS{}
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(src, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("copying the built widget: %w", err)
	}
	launcher, ok := m["widget.js"]
	if !ok {
		return nil, errors.New("the built widget has no widget.js: run make build")
	}
	for _, name := range assetName.FindAllStringSubmatch(string(launcher.Data), -1) {
		if _, ok := m["assets/"+name[1]]; !ok {
			return nil, fmt.Errorf("the built widget changed while it was copied (assets/%s is missing)", name[1])
		}
	}
	return m, nil
}

func newHostile(t *testing.T, o hostileOpts) *hostileStack {
	t.Helper()
	dist := hostileAssets(t)
	w, err := web.LoadWidget(dist)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	s := &hostileStack{t: t, ctx: ctx, opKey: key(t, "skin"), attKey: key(t, "attacker"), widget: w, skin: o.skin}
	s.pin = s.opKey.PublicKey.Fingerprint().String()
	if o.pin != nil {
		s.pin = *o.pin
	}
	if s.skin.Policy == "" {
		s.skin.Policy = "require"
	}
	if s.skin.Fingerprints == nil {
		// The hostile service lists its own key as the skin's.
		s.skin.Fingerprints = []string{s.attKey.PublicKey.Fingerprint().String()}
	}
	if s.skin.Title == "" {
		s.skin.Title = "Help desk shop"
	}
	opts := xmpptest.Options{Components: map[string]string{componentDomain: componentSecret}}
	if o.omemo {
		opts.HostModules = []string{"pep"}
	}
	s.srv = xmpptest.Prosody(t, opts)

	opJID := ""
	var bundle func(uint32) *omemo.Bundle
	if o.operator {
		if _, err := s.srv.Register(ctx, "ada", "pw-ada"); err != nil {
			t.Fatal(err)
		}
		c, err := s.srv.Dial(ctx, "ada", "pw-ada", "desk")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		opJID = c.JID().String()
		devices := 0
		if o.omemo {
			devices = 1
		}
		s.bot, err = operator.New(operator.Config{
			Client: c, Key: s.opKey, Service: componentDomain,
			Answer: func(alias, text string) string { return "Operator read: " + text },
			Logf:   t.Logf, OMEMODevices: devices,
		})
		if err != nil {
			t.Fatal(err)
		}
		if o.omemo {
			bundle = s.bot.Bundle
			if o.pin == nil {
				s.pin += ", " + s.bot.Devices()[0].Hex()
			}
		}
		xmpptest.RunUntilCleanupLogged(t, "operator", s.bot.Run)
	}

	comp, err := s.srv.DialComponent(ctx, componentDomain, componentSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { comp.Close() })
	s.att, err = hostile.New(hostile.Config{
		Client: comp, Domain: componentDomain, Skin: "shop", Operator: opJID, OperatorName: o.operatorName,
		Key: s.attKey, AnswerQueries: o.answerQueries, Logf: t.Logf,
		OMEMO: o.omemo, OperatorBundle: bundle,
	})
	if err != nil {
		t.Fatal(err)
	}
	xmpptest.RunUntilCleanupLogged(t, "attacker", s.att.Run)

	// The hostile service's HTTP side serves the genuine assets (the page
	// checks them by SRI) and its own skin JSON.
	wl := listen(t)
	s.widgetURL = "http://" + wl.Addr().String()
	genuine := web.New(web.Config{PublicURL: s.widgetURL, BOSHURL: s.srv.BOSHURL, AnonymousDomain: xmpptest.AnonDomain,
		ComponentDomain: componentDomain, Assets: dist})
	mux := http.NewServeMux()
	mux.Handle("/", genuine)
	mux.HandleFunc("GET /skins/shop.json", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"name": "shop", "title": s.skin.Title, "greeting": s.skin.Greeting, "color": s.skin.Color,
			"policy": s.skin.Policy, "jid": "shop@" + componentDomain, "bosh_url": s.srv.BOSHURL,
			"anonymous_domain": xmpptest.AnonDomain, "fingerprints": s.skin.Fingerprints, "available": true,
			"omemo_fingerprints": s.skin.OMEMOFingerprints,
		})
	})
	serve(t, wl, mux)

	pl := listen(t)
	s.pageURL = "http://localhost:" + portOf(pl.Addr()) + "/"
	serve(t, pl, http.HandlerFunc(s.page))

	return s
}

// page is the customer's page: the pinned snippet exactly as
// `otrdesk snippet` prints it (versioned URL, integrity, crossorigin,
// data-skin, data-fingerprint), under the strict CSP of the embedding docs.
func (s *hostileStack) page(w http.ResponseWriter, r *http.Request) {
	bosh := s.srv.BOSHURL
	if i := strings.Index(bosh[len("http://"):], "/"); i >= 0 {
		bosh = bosh[:len("http://")+i]
	}
	w.Header().Set("Content-Security-Policy", fmt.Sprintf(
		"default-src 'none'; script-src %s 'wasm-unsafe-eval'; worker-src blob:; connect-src %s %s; style-src 'self'; base-uri 'none'",
		s.widgetURL, s.widgetURL, bosh))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example shop</title></head>
<body><h1>Example shop</h1>
<script src="%s/widget-%s.js" integrity="%s" crossorigin="anonymous"
        data-skin="shop" data-fingerprint="%s" async></script>
</body></html>`, s.widgetURL, s.widget.Hash, s.widget.SRI, html.EscapeString(s.pin))
}

// ---- watching the page ----

// watchJS installs a MutationObserver on the page and on the widget's
// shadow root. On every change it looks at every text and attribute value
// of the page (shadow roots included) for the verified sentence, exactly
// and after normalising look-alikes (NFKC, format characters such as
// zero-width joiners dropped, case folded, accents dropped, Cyrillic and
// Greek letters that look Latin read as Latin, white space collapsed), and
// keeps the history of the security line. __hostile.typed counts the
// visitor's messages; verifiedAt and lookalikeAt are the count at the
// first sighting (-1: never); transferAt is the index in sentences of the
// line in force when the transcript first said the chat was transferred.
var watchJS = `(() => {
  if (window.__hostile) return '';
  const V = ` + jsString(sentVerified) + `;
  // Cyrillic and Greek letters that render like Latin ones (NFKC keeps them).
  const LATIN = {'а': 'a', 'в': 'b', 'е': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'т': 't', 'у': 'y', 'х': 'x',
    'і': 'i', 'ѕ': 's', 'ј': 'j', 'α': 'a', 'ε': 'e', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x'};
  const norm = (s) => [...s.normalize('NFKC').replace(/\p{Cf}/gu, '').toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '')]
    .map((c) => LATIN[c] ?? c).join('').replace(/\s+/g, ' ');
  const NV = norm(V);
  const h = window.__hostile = {typed: 0, verifiedAt: -1, lookalikeAt: -1, lookalike: '', sentences: [], transferAt: -1, checks: 0};
  const root = () => ` + widgetRoot + `;
  const all = () => { const out = []; const walk = (n) => {
    if (n.nodeType === 3) out.push(n.data);
    if (n.nodeType === 1) { for (const a of n.attributes) out.push(a.value); if (n.shadowRoot) walk(n.shadowRoot); }
    for (const c of n.childNodes) walk(c); };
    walk(document.documentElement); return out.join('\n'); };
  const check = () => {
    h.checks++;
    const text = all();
    if (h.verifiedAt < 0 && text.includes(V)) h.verifiedAt = h.typed;
    const n = norm(text);
    const i = n.indexOf(NV);
    if (h.lookalikeAt < 0 && i >= 0 && !text.includes(V)) { h.lookalikeAt = h.typed; h.lookalike = n.slice(Math.max(0, i - 60), i + NV.length + 20); }
    const r = root(); const s = r && r.querySelector('.s');
    const line = s ? s.textContent : '';
    if (h.sentences[h.sentences.length - 1] !== line) h.sentences.push(line);
    if (h.transferAt < 0 && r && [...r.querySelectorAll('.m li')].some((li) => /transferred/i.test(li.textContent))) h.transferAt = h.sentences.length - 1;
  };
  const opts = {subtree: true, childList: true, characterData: true, attributes: true};
  const mo = new MutationObserver(check);
  mo.observe(document.documentElement, opts);
  const r = root(); if (r) mo.observe(r, opts);
  check();
  return '';
})()`

type watch struct {
	Typed       int      `json:"typed"`
	VerifiedAt  int      `json:"verifiedAt"`
	LookalikeAt int      `json:"lookalikeAt"`
	Lookalike   string   `json:"lookalike"`
	Sentences   []string `json:"sentences"`
	TransferAt  int      `json:"transferAt"`
	Checks      int      `json:"checks"`
}

func (s *hostileStack) watch(b *browser) watch {
	s.t.Helper()
	var w watch
	if err := json.Unmarshal([]byte(b.eval(`JSON.stringify(window.__hostile)`)), &w); err != nil {
		b.failf("reading the page watch: %v", err)
	}
	return w
}

// open loads the customer's page, starts watching it and opens the chat.
func (s *hostileStack) open(b *browser) {
	s.t.Helper()
	b.open(s.pageURL)
	b.eval(watchJS)
	b.clickLauncher()
	b.waitFor("the chat panel", widgetRoot+`.querySelector('textarea')`)
}

// reload reloads the page, as a visitor pressing F5 in the middle of the
// chat, and watches the new page, keeping what the old one saw.
func (s *hostileStack) reload(b *browser) {
	s.t.Helper()
	w := s.watch(b)
	if s.prior != nil {
		w = s.prior.then(w)
	}
	s.prior = &w
	b.do("reloading", chromedp.Reload())
	b.waitFor("the chat panel after the reload", widgetRoot+` && `+widgetRoot+`.querySelector('textarea')`)
	b.eval(watchJS)
	s.mu.Lock()
	n := len(s.canaries)
	s.mu.Unlock()
	b.eval(fmt.Sprintf(`(() => { window.__hostile.typed = %d; if (window.__hostile.verifiedAt >= 0) window.__hostile.verifiedAt = %d; return ''; })()`, n, n))
}

// then is what a page watch w saw followed by a later one, next.
func (w watch) then(next watch) watch {
	out := w
	out.Sentences = append(append(append([]string(nil), w.Sentences...), "(the page reloads)"), next.Sentences...)
	if out.VerifiedAt < 0 {
		out.VerifiedAt = next.VerifiedAt
	}
	if out.LookalikeAt < 0 {
		out.LookalikeAt, out.Lookalike = next.LookalikeAt, next.Lookalike
	}
	if out.TransferAt < 0 && next.TransferAt >= 0 {
		out.TransferAt = len(w.Sentences) + 1 + next.TransferAt
	}
	out.Typed, out.Checks = next.Typed, w.Checks+next.Checks
	return out
}

// transcript is what the visitor sees in the chat: the security line, the
// status line, the error line and every transcript entry with its class
// and marks.
func (s *hostileStack) transcript(b *browser) string {
	return b.eval(`(() => { const r = ` + widgetRoot + `; if (!r) return '(no widget)';
	  const t = (sel) => { const e = r.querySelector(sel); return e && !e.hidden ? e.textContent : ''; };
	  const lines = ['security line: ' + t('.s'), 'status line: ' + t('.q'), 'error line: ' + t('.e')];
	  for (const li of r.querySelectorAll('.m li')) {
	    const marks = [...li.attributes].filter((a) => a.name !== 'class').map((a) => a.name + '=' + a.value).join(' ');
	    lines.push('  [' + li.className + (marks ? ' ' + marks : '') + '] ' + li.textContent);
	  }
	  return lines.join('\n'); })()`)
}

// notesJS counts the widget's own notes in the transcript.
var notesJS = `(() => { const r = ` + widgetRoot + `; return r ? r.querySelectorAll('.m li.note').length : 0; })()`

func (s *hostileStack) notes(b *browser) int {
	var n int
	fmt.Sscan(b.eval(`String(`+notesJS+`)`), &n)
	return n
}

// say types a message with a unique canary and returns the canary. When
// the input is disabled the visitor cannot write; that is reported and ""
// returned.
func (s *hostileStack) say(b *browser, label string) string {
	s.t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	canary := "canary-" + label + "-" + hex.EncodeToString(rnd[:])
	if b.eval(`String(`+widgetRoot+`.querySelector('textarea').disabled)`) == "true" {
		s.t.Logf("the message input is disabled: the visitor cannot write %q", label)
		return ""
	}
	b.eval(`(() => { window.__hostile.typed++; return ''; })()`)
	s.mu.Lock()
	s.canaries = append(s.canaries, canary)
	s.mu.Unlock()
	b.write(canary)
	return canary
}

// settle waits, at most settleTime, for a message to reach the attacker's
// eyes or the real operator; it returns who read it ("" for nobody yet).
func (s *hostileStack) settle(canary string) string {
	s.t.Helper()
	if canary == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(s.ctx, settleTime)
	defer cancel()
	who := make(chan string, 2)
	if s.bot != nil {
		go func() {
			if _, err := s.bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message && e.Text == canary }); err == nil {
				who <- "the operator"
			}
		}()
	}
	go func() {
		if _, err := s.att.Wait(ctx, "the canary", func(sn hostile.Snapshot) bool { _, ok := sn.Learned(canary); return ok }); err == nil {
			who <- "the attacker"
		}
	}()
	select {
	case w := <-who:
		return w
	case <-ctx.Done():
		return ""
	}
}

// waitAttacker waits for a condition on what the attacker saw.
func (s *hostileStack) waitAttacker(b *browser, what string, cond func(hostile.Snapshot) bool) hostile.Snapshot {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	sn, err := s.att.Wait(ctx, what, cond)
	if err != nil {
		s.t.Logf("what the visitor sees:\n%s", s.transcript(b))
		b.failf("%v", err)
	}
	return sn
}

// waitJS polls the page until expr is true or waitLong passes; unlike
// b.waitFor it reports instead of failing, for assertions that go on.
func (s *hostileStack) waitJS(b *browser, expr string) bool {
	deadline := time.Now().Add(waitLong)
	for {
		if b.eval(`String(!!(`+expr+`))`) == "true" {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// verdict checks what every hostile test asserts (see the file comment)
// and logs what the visitor saw.
func (s *hostileStack) verdict(b *browser) watch {
	s.t.Helper()
	t := s.t
	w := s.watch(b)
	if s.prior != nil {
		w = s.prior.then(w)
	}
	sn := s.att.Snapshot()
	s.mu.Lock()
	canaries := append([]string(nil), s.canaries...)
	s.mu.Unlock()
	leaked := false
	for i, c := range canaries {
		how, ok := sn.Learned(c)
		if !ok {
			continue
		}
		if s.chosen[c] {
			t.Logf("the attacker read the visitor's message %d (%s), which the visitor chose to send to an unverified operator: it %s", i+1, c, how)
			continue
		}
		leaked = true
		if w.VerifiedAt >= 0 && w.VerifiedAt <= i {
			t.Errorf("the visitor's message %d (%s), typed after the page said %q, was read by the attacker: it %s", i+1, c, sentVerified, how)
		} else {
			// A pinned page is "require": text goes to a key that is not
			// pinned only once the visitor chose to write to it, and no
			// test here makes that choice.
			t.Errorf("the visitor's message %d (%s) was read by the attacker although the visitor never chose to write to an unverified operator: it %s", i+1, c, how)
		}
	}
	if leaked && w.VerifiedAt >= 0 {
		t.Errorf("the page showed %q (first after %d message(s) typed) in a chat where the visitor's text reached the attacker's key", sentVerified, w.VerifiedAt)
	}
	if w.Checks == 0 {
		t.Error("the page watch never ran")
	}
	b.screenshot("end")
	t.Logf("security line over time: %q", w.Sentences)
	t.Logf("what the visitor sees at the end:\n%s", s.transcript(b))
	t.Logf("the attacker finished %d AKE(s) and decrypted %d visitor message(s)", sn.AttackerAKEs, len(sn.Decrypted))
	return w
}

func (s *hostileStack) noVerified(w watch, why string) {
	s.t.Helper()
	if w.VerifiedAt >= 0 {
		s.t.Errorf("the page showed %q (%s)", sentVerified, why)
	}
}

func countIn(bodies []string, kind otr.Kind, typ otr.MessageType) int {
	return hostile.Count(bodies, kind, typ)
}

// ---- 1. a second instance beside the real operator ----

// TestHostileSecondInstance: the service answers the visitor's query with
// an AKE of its own under a second instance tag, beside the real
// operator's. Whichever finishes last, and whether or not the attacker's
// session then writes (which made the engine's "most recently active"
// pick it), nothing typed after the verified sentence may be readable by
// the attacker; a second instance finishing after the verified one
// changes the security line.
func TestHostileSecondInstance(t *testing.T) {
	for _, tc := range []struct {
		name           string
		attackerFirst  bool
		attackerSpeaks bool
		spoof          bool // the attacker's AKE runs under the operator's instance tag: a re-key
	}{
		{"attacker-first-then-operator", true, false, false},
		{"attacker-first-then-operator-then-attacker-writes", true, true, false},
		{"operator-first-then-attacker", false, false, false},
		{"operator-first-then-attacker-then-attacker-writes", false, true, false},
		{"operator-first-then-attacker-rekeys-operator-instance", false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostile(t, hostileOpts{operator: true, answerQueries: tc.attackerFirst, operatorName: "Ada"})
			b := newBrowser(t)
			all := func(otr.Info) bool { return true }
			if tc.attackerFirst {
				s.att.HoldOperator(all)
			}
			s.open(b)
			if tc.attackerFirst {
				s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs == 1 })
				t.Logf("after the attacker's AKE the visitor sees %q", b.securityText())
				if err := s.att.ReleaseOperator(s.ctx, ""); err != nil {
					t.Fatal(err)
				}
				s.waitAttacker(b, "the visitor's Signature to the operator", func(sn hostile.Snapshot) bool {
					return countIn(sn.Sent, otr.KindEncoded, otr.Sig) == 2
				})
			} else {
				s.waitAttacker(b, "the visitor's Signature to the operator", func(sn hostile.Snapshot) bool {
					return countIn(sn.Sent, otr.KindEncoded, otr.Sig) == 1
				})
				b.waitSentence(sentVerified) // the real operator, pinned: correct
				changedFrom := len(s.watch(b).Sentences)
				notes := s.notes(b)
				tag := uint32(0)
				if tc.spoof {
					tag = s.att.Snapshot().OperatorTag
				}
				if err := s.att.StartAKE(s.ctx, tag); err != nil {
					t.Fatal(err)
				}
				s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs == 1 })
				// Another instance finishing an AKE after the verified one is
				// a visible change: the line must not go on saying verified,
				// and the transcript says so in words.
				if !s.waitJS(b, `window.__hostile.sentences.length > `+fmt.Sprint(changedFrom)) {
					t.Errorf("a second instance with the attacker's key finished an AKE after the verified one and the security line did not change from %q", b.securityText())
				}
				if !s.waitJS(b, notesJS+` > `+fmt.Sprint(notes)) {
					t.Errorf("a second instance with the attacker's key finished an AKE after the verified one and the transcript says nothing about it")
				}
			}
			if tc.attackerSpeaks {
				if err := s.att.Say(s.ctx, "Hi, Ada here. How can I help?"); err != nil {
					t.Fatal(err)
				}
				if !s.waitJS(b, widgetRoot+`.querySelector('.m').textContent.includes('How can I help?')`) {
					t.Logf("the attacker's message is not shown")
				}
			}
			t.Logf("before typing, the visitor sees %q", b.securityText())
			c := s.say(b, "second-instance")
			t.Logf("the message went to: %s", or(s.settle(c), "nobody within "+settleTime.String()))
			s.verdict(b)
		})
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestHostileHeldMessageGoesToVerified: the visitor writes before any AKE
// has finished; the attacker's AKE finishes first, then the real
// operator's. The held message goes to the verified session only.
func TestHostileHeldMessageGoesToVerified(t *testing.T) {
	s := newHostile(t, hostileOpts{operator: true, operatorName: "Ada"})
	b := newBrowser(t)
	s.att.HoldOperator(func(otr.Info) bool { return true })
	s.open(b)
	s.waitAttacker(b, "the widget's query", func(sn hostile.Snapshot) bool { return countIn(sn.Sent, otr.KindQuery, 0) >= 1 })
	early := s.say(b, "typed-early")
	if err := s.att.StartAKE(s.ctx, 0); err != nil {
		t.Fatal(err)
	}
	s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs == 1 })
	t.Logf("after the attacker's AKE the visitor sees %q; the early message went to: %s", b.securityText(), or(s.settle(early), "nobody within "+settleTime.String()))
	if err := s.att.ReleaseOperator(s.ctx, ""); err != nil {
		t.Fatal(err)
	}
	b.waitSentence(sentVerified)
	if err := s.att.Say(s.ctx, "Ada here."); err != nil {
		t.Fatal(err)
	}
	t.Logf("after the operator's AKE the early message went to: %s", or(s.settle(early), "nobody within "+settleTime.String()))
	s.verdict(b)
}

// ---- 2. a forged OTR error, then the attacker's AKE ("[resent]") ----

// TestHostileForgedErrorResend: after a verified exchange with the real
// operator, the service forges "?OTR Error:" as if the operator could not
// read the last message, then runs an AKE with its own key (under its own
// instance tag, or under the operator's, a re-key to another key). The
// engine must not resend the last message to that key, and the line must
// stop saying verified.
func TestHostileForgedErrorResend(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoof bool // the attacker uses the operator's instance tag
	}{
		{"attacker-instance", false},
		{"operator-instance-rekeyed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostile(t, hostileOpts{operator: true, operatorName: "Ada"})
			b := newBrowser(t)
			s.open(b)
			b.waitSentence(sentVerified)
			first := s.say(b, "before-error")
			if who := s.settle(first); who != "the operator" {
				t.Logf("the first message went to: %s", or(who, "nobody"))
			}
			// From here on the real operator hears nothing more.
			s.att.HoldOperator(func(otr.Info) bool { return true })
			sn := s.att.Snapshot()
			before := len(s.watch(b).Sentences)
			notes := s.notes(b)
			if err := s.att.Inject(s.ctx, otr.ErrorMessage("Error setting up private conversation: Malformed message received")); err != nil {
				t.Fatal(err)
			}
			tag := uint32(0)
			if tc.spoof {
				tag = sn.OperatorTag
			}
			if err := s.att.StartAKE(s.ctx, tag); err != nil {
				t.Fatal(err)
			}
			s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 1 })
			// A resend, if any, follows the AKE at once.
			ctx, cancel := context.WithTimeout(s.ctx, settleTime)
			if _, err := s.att.Wait(ctx, "a resend", func(sn hostile.Snapshot) bool { _, ok := sn.Learned(first); return ok }); err == nil {
				t.Logf("the engine resent the first message to the attacker")
			}
			cancel()
			if !s.waitJS(b, `window.__hostile.sentences.length > `+fmt.Sprint(before)+` && window.__hostile.sentences[window.__hostile.sentences.length-1] !== `+jsString(sentVerified)) {
				t.Errorf("after the attacker's AKE (%s) the security line still says %q", tc.name, b.securityText())
			}
			if !s.waitJS(b, notesJS+` > `+fmt.Sprint(notes)) {
				t.Errorf("after the attacker's AKE (%s) the transcript says nothing about the change", tc.name)
			}
			second := s.say(b, "after-error")
			t.Logf("the second message went to: %s", or(s.settle(second), "nobody within "+settleTime.String()))
			s.verdict(b)
		})
	}
}

// ---- 3. the skin's policy against a pinned page ----

// TestHostilePolicyDowngrade: the skin JSON says "plaintext" or
// "opportunistic" and the "operator" answers in plaintext, on a page that
// pins the operator's key. A pinned page is "require": the visitor sends
// nothing in plaintext, the line never says verified nor "Not encrypted.",
// and the plaintext line is shown as unencrypted.
func TestHostilePolicyDowngrade(t *testing.T) {
	for _, policy := range []string{"plaintext", "opportunistic"} {
		t.Run(policy, func(t *testing.T) {
			s := newHostile(t, hostileOpts{operatorName: "Ada", skin: skinDoc{Policy: policy}})
			b := newBrowser(t)
			s.open(b)
			first := s.say(b, "downgrade-1")
			s.waitAttacker(b, "the visitor's first message", func(sn hostile.Snapshot) bool { return sn.Visitor != "" })
			const line = "Hello, Ada here. How can I help you today?"
			if err := s.att.Inject(s.ctx, line); err != nil {
				t.Fatal(err)
			}
			if !s.waitJS(b, widgetRoot+`.querySelector('.m').textContent.includes(`+jsString(line)+`)`) {
				t.Errorf("the operator's plaintext line is not shown at all")
			} else if !shownUnencrypted(b, line) {
				t.Errorf("the operator's plaintext line is shown like any message, not as unencrypted")
			}
			second := s.say(b, "downgrade-2")
			s.settle(second)
			w := s.verdict(b)
			s.noVerified(w, "no AKE ran")
			sn := s.att.Snapshot()
			for _, c := range []string{first, second} {
				for _, body := range sn.Sent {
					if c != "" && strings.Contains(body, c) {
						t.Errorf("the pinned page sent what the visitor typed in plaintext (skin policy %q)", policy)
						break
					}
				}
			}
			for _, line := range w.Sentences {
				if line == sentPlaintext {
					t.Errorf("the pinned page said %q: the skin's policy %q downgraded it", sentPlaintext, policy)
				}
			}
		})
	}
}

// TestHostileOpportunisticFirstSession: the skin JSON says
// "opportunistic" (under which, on an unpinned page, the round's first
// session may be written to at once) and the attacker alone runs an AKE,
// on a page that pins the operator's key. The pin makes the chat
// "require": the line says not verified and nothing goes to the attacker
// until the visitor chooses so.
func TestHostileOpportunisticFirstSession(t *testing.T) {
	s := newHostile(t, hostileOpts{answerQueries: true, operatorName: "Ada", skin: skinDoc{Policy: "opportunistic"}})
	b := newBrowser(t)
	s.open(b)
	b.waitSentence(sentUnverified)
	c := s.say(b, "opportunistic-first")
	s.settle(c)
	w := s.verdict(b)
	s.noVerified(w, "the only key is the attacker's")
}

// shownUnencrypted reports whether the transcript entry holding text says,
// in its words or its attributes, that it came unencrypted.
func shownUnencrypted(b *browser, text string) bool {
	return b.eval(`(() => { const r = `+widgetRoot+`;
	  const li = [...r.querySelectorAll('.m li')].find((li) => li.textContent.includes(`+jsString(text)+`));
	  if (!li) return 'false';
	  const words = [li.textContent, ...[...li.attributes].map((a) => a.value)].join(' ');
	  return String(/unencrypted|not encrypted/i.test(words)); })()`) == "true"
}

// ---- 4. malformed and empty pins ----

// TestHostileBadPins: the page's data-fingerprint is present but broken,
// and the skin JSON lists the attacker's key, which runs the AKE. A broken
// pin trusts nothing: never verified, and the visitor is told the page is
// misconfigured.
func TestHostileBadPins(t *testing.T) {
	good := key(t, "skin").PublicKey.Fingerprint().Hex()
	for _, tc := range []struct{ name, pin string }{
		{"empty", ""},
		{"nonsense", "nonsense"},
		{"39-hex", good[:39]},
		{"good-and-bad", good + ",nonsense"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostile(t, hostileOpts{answerQueries: true, operatorName: "Ada", pin: ptr(tc.pin)})
			b := newBrowser(t)
			s.open(b)
			told := s.waitJS(b, `(() => { const r = `+widgetRoot+`; return r && (`+misconfiguredRE+`.test(r.textContent) || r.textContent.includes(`+jsString(sentVerified)+`)); })()`)
			if !told || !(b.eval(`String(`+misconfiguredRE+`.test(`+widgetRoot+`.textContent))`) == "true") {
				t.Errorf("with data-fingerprint=%q the visitor is not told the page is misconfigured", tc.pin)
			}
			// Give the attacker's AKE its chance, if the widget started one.
			ctx, cancel := context.WithTimeout(s.ctx, settleTime)
			_, _ = s.att.Wait(ctx, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 1 })
			cancel()
			c := s.say(b, "bad-pin")
			s.settle(c)
			w := s.verdict(b)
			s.noVerified(w, "the pin "+fmt.Sprintf("%q", tc.pin)+" is broken, so nothing is trusted; the attacker's key is only in the skin JSON")
		})
	}
}

// ---- 5. service strings that imitate the sentence ----

// fullwidth writes ASCII in its fullwidth forms (NFKC folds them back).
func fullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == ' ':
			b.WriteRune('\u3000')
		case r > ' ' && r < 0x7f:
			b.WriteRune(r - 0x21 + 0xFF01)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// zwj puts a zero-width joiner between every two characters.
func zwj(s string) string { return strings.Join(strings.Split(s, ""), "\u200d") }

// TestHostileServiceStrings: the service puts the verified sentence, or
// something that reads like it, in the skin title, the greeting, the
// operator's display name, its messages and an OTR error, while the only
// AKE is the attacker's (not the pinned key). Neither the sentence nor a
// look-alike may appear anywhere on the page.
func TestHostileServiceStrings(t *testing.T) {
	type plan struct {
		name            string
		title, greeting string
		operator        string // display name in the status element
		say, inject     string // an encrypted line from the attacker's session; any body
	}
	for _, tc := range []plan{
		{name: "title", title: sentVerified},
		{name: "greeting-fullwidth", greeting: fullwidth(sentVerified)},
		{name: "greeting-cyrillic-homoglyphs", greeting: "Тhis chаt usеs еnd-tо-еnd еncryptiоn."},
		{name: "title-accents", title: "This chat uses end-to-end éncryptíon."},
		{name: "operator-name-zero-width-joiners", operator: zwj(sentVerified)},
		{name: "message-upper-case", say: strings.ToUpper(sentVerified)},
		{name: "split-name-and-message", operator: "This chat uses", say: "end-to-end encryption."},
		{name: "otr-error-text", inject: otr.ErrorMessage(sentVerified)},
		{name: "plaintext-line", inject: "this chat uses end\u2011to\u2011end encryption."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostile(t, hostileOpts{answerQueries: true, operatorName: tc.operator,
				skin: skinDoc{Title: tc.title, Greeting: tc.greeting}})
			b := newBrowser(t)
			s.open(b)
			s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 1 })
			if tc.say != "" {
				if err := s.att.Say(s.ctx, tc.say); err != nil {
					t.Fatal(err)
				}
			}
			if tc.inject != "" {
				if err := s.att.Inject(s.ctx, tc.inject); err != nil {
					t.Fatal(err)
				}
			}
			// A marker behind the attack: once it is shown, so is (or was
			// dropped) everything before it.
			if err := s.att.Say(s.ctx, "marker-after-the-attack"); err != nil {
				t.Fatal(err)
			}
			if !s.waitJS(b, widgetRoot+`.querySelector('.m').textContent.includes('marker-after-the-attack')`) {
				t.Errorf("the attacker's messages are not shown")
			}
			w := s.verdict(b)
			s.noVerified(w, "the only key is the attacker's")
			if w.LookalikeAt >= 0 {
				t.Errorf("the page reads like %q: %q", sentVerified, w.Lookalike)
			}
		})
	}
}

// ---- 6. a transfer racing an in-flight AKE ----

// TestHostileTransferRace: a verified chat with the real operator; the
// service re-assigns it, so a new AKE round starts, and holds the
// operator's Reveal Signature. It then delivers that Reveal Signature
// together with (or after) a "transferred" status: the old round's secure
// must not mark the new round verified. The new round is the attacker's,
// with its own key; nothing typed after the transfer may reach it, and
// after the transfer the line never says verified.
func TestHostileTransferRace(t *testing.T) {
	for _, tc := range []struct {
		name string
		late bool // the stale Reveal Signature comes after the transfer was handled
	}{
		{"reveal-signature-with-transfer", false},
		{"reveal-signature-after-transfer", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostile(t, hostileOpts{operator: true, operatorName: "Ada"})
			b := newBrowser(t)
			s.open(b)
			b.waitSentence(sentVerified)
			queries := func(sn hostile.Snapshot) int { return countIn(sn.Sent, otr.KindQuery, 0) }
			q0 := queries(s.att.Snapshot())

			// Round 2: the service re-assigns the chat; the widget asks for
			// a new AKE and the operator's Reveal Signature is held.
			s.att.HoldOperator(func(i otr.Info) bool { return i.Kind == otr.KindEncoded && i.Type == otr.RevealSig })
			if err := s.att.Status(s.ctx, "assigned", "Ada"); err != nil {
				t.Fatal(err)
			}
			s.waitAttacker(b, "the operator's Reveal Signature of round 2", func(sn hostile.Snapshot) bool { return sn.Held == 1 })
			if queries(s.att.Snapshot()) <= q0 {
				t.Fatalf("the widget ran no new AKE after being re-assigned")
			}
			q1 := queries(s.att.Snapshot())

			transferShown := `[...` + widgetRoot + `.querySelectorAll('.m li')].some((li) => /transferred/i.test(li.textContent))`
			if tc.late {
				if err := s.att.Status(s.ctx, "transferred", ""); err != nil {
					t.Fatal(err)
				}
				if !s.waitJS(b, transferShown) {
					t.Errorf("the transfer is not shown")
				}
				// From now on the real operator is gone; its stale message arrives.
				if err := s.att.ReleaseOperator(s.ctx, ""); err != nil {
					t.Fatal(err)
				}
				s.att.HoldOperator(func(otr.Info) bool { return true })
			} else {
				if err := s.att.ReleaseOperator(s.ctx, "transferred"); err != nil {
					t.Fatal(err)
				}
				s.att.HoldOperator(func(otr.Info) bool { return true })
				if !s.waitJS(b, transferShown) {
					t.Errorf("the transfer is not shown")
				}
			}
			// If the widget takes the stale Reveal Signature, it answers with
			// a Signature at once. (Released with the transfer, the Reveal
			// Signature and the status arrive in one BOSH response: the page
			// hands the first to the engine and handles the transfer before
			// the engine's answer comes back, so that answer is stale.)
			ctx, cancel := context.WithTimeout(s.ctx, settleTime)
			if _, err := s.att.Wait(ctx, "a Signature for the stale round", func(sn hostile.Snapshot) bool {
				return countIn(sn.Sent, otr.KindEncoded, otr.Sig) >= 2
			}); err == nil {
				t.Logf("the widget completed the old round's AKE after the transfer")
			}
			cancel()
			if queries(s.att.Snapshot()) == q1 {
				t.Logf("the widget asked for no new AKE after the transfer")
			}
			t.Logf("after the transfer the visitor sees %q", b.securityText())
			c := s.say(b, "after-transfer")
			// The new operator is the attacker.
			if err := s.att.StartAKE(s.ctx, 0); err != nil {
				t.Fatal(err)
			}
			s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 1 })
			t.Logf("the message went to: %s", or(s.settle(c), "nobody within "+settleTime.String()))
			t.Logf("after the new operator's AKE the visitor sees %q", b.securityText())
			c2 := s.say(b, "after-new-ake")
			t.Logf("the second message went to: %s", or(s.settle(c2), "nobody within "+settleTime.String()))
			w := s.verdict(b)
			if w.TransferAt < 0 {
				t.Fatalf("the page never showed the transfer")
			}
			// From the transfer on, no line may say verified: no trusted key
			// finished an AKE in the new round.
			since := w.Sentences[w.TransferAt:]
			for _, line := range since {
				if line == sentVerified {
					t.Errorf("from the transfer on the line said %q although no trusted key finished an AKE in the new round (lines from the transfer: %q)", sentVerified, since)
					break
				}
			}
		})
	}
}

// ---- 7. plaintext inside a fragment ----

// TestHostilePlaintextFragment: in a verified chat with the real operator,
// the service sends a fragment that reassembles to plain text, under the
// operator's instance tag. It is plaintext and must be shown as
// unencrypted, not as an encrypted message of the operator.
func TestHostilePlaintextFragment(t *testing.T) {
	for _, tc := range []struct {
		name         string
		toVisitorTag bool // receiver tag: the visitor's, or 0
	}{
		{"to-visitor-instance", true},
		{"receiver-tag-0", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostile(t, hostileOpts{operator: true, operatorName: "Ada"})
			b := newBrowser(t)
			s.open(b)
			b.waitSentence(sentVerified)
			first := s.say(b, "before-fragment")
			s.settle(first)
			sn := s.att.Snapshot()
			recv := uint32(0)
			if tc.toVisitorTag {
				recv = sn.VisitorTag
			}
			const line = "Please also send me your card number here"
			if err := s.att.Inject(s.ctx, hostile.PlaintextFragment(sn.OperatorTag, recv, line)); err != nil {
				t.Fatal(err)
			}
			if err := s.att.Inject(s.ctx, "marker-after-the-fragment"); err != nil {
				t.Fatal(err)
			}
			if !s.waitJS(b, widgetRoot+`.querySelector('.m').textContent.includes('marker-after-the-fragment')`) {
				t.Errorf("the plaintext marker is not shown")
			}
			shown := b.eval(`String(`+widgetRoot+`.querySelector('.m').textContent.includes(`+jsString(line)+`))`) == "true"
			switch {
			case !shown:
				t.Errorf("the fragment's plaintext is not shown at all (it should be, marked unencrypted)")
			case !shownUnencrypted(b, line):
				t.Errorf("plaintext from a fragment is shown as an encrypted message of the operator")
			}
			s.verdict(b)
		})
	}
}

// ---- the visitor's choice is for one session ----

// TestHostileConfirmIsForOneSession: the attacker's AKE finishes first and
// the visitor chooses to write to that unverified operator (that message
// may go to the attacker: the visitor chose). Then the real operator's AKE
// finishes: the line says verified and what the visitor types goes to the
// operator, even after the attacker writes. Then the attacker runs a new
// AKE on its instance with the same key: the earlier choice does not carry
// over to it without being asked again.
func TestHostileConfirmIsForOneSession(t *testing.T) {
	s := newHostile(t, hostileOpts{operator: true, answerQueries: true, operatorName: "Ada"})
	b := newBrowser(t)
	s.att.HoldOperator(func(otr.Info) bool { return true })
	s.open(b)
	s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs == 1 })
	b.waitSentence(sentUnverified)
	chosen := s.say(b, "chosen")
	b.waitFor("the choice to write to an unverified operator", `(() => { const c = `+widgetRoot+`.querySelector('button.confirm'); return c && c.offsetParent !== null; })()`)
	b.do("choosing to write to the unverified operator", chromedp.Click(inWidget("button.confirm")))
	s.mu.Lock()
	s.chosen = map[string]bool{chosen: true}
	s.mu.Unlock()
	t.Logf("the chosen message went to: %s", or(s.settle(chosen), "nobody within "+settleTime.String()))

	if err := s.att.ReleaseOperator(s.ctx, ""); err != nil {
		t.Fatal(err)
	}
	b.waitSentence(sentVerified)
	if err := s.att.Say(s.ctx, "Still here, write to me."); err != nil {
		t.Fatal(err)
	}
	verified := s.say(b, "after-verified")
	t.Logf("the message after the verified line went to: %s", or(s.settle(verified), "nobody within "+settleTime.String()))

	notes := s.notes(b)
	if err := s.att.StartAKE(s.ctx, 0); err != nil {
		t.Fatal(err)
	}
	s.waitAttacker(b, "the attacker's second AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs == 2 })
	if !s.waitJS(b, notesJS+` > `+fmt.Sprint(notes)) {
		t.Errorf("the attacker's new AKE after the verified line is not told in the transcript")
	}
	t.Logf("after the attacker's new AKE the visitor sees %q", b.securityText())
	again := s.say(b, "after-rekey")
	t.Logf("the message after the attacker's new AKE went to: %s", or(s.settle(again), "nobody within "+settleTime.String()))
	s.verdict(b)
}

// ---- a reload in the middle of an attack ----

// TestHostileReload: a verified chat with the real operator; the attacker
// finishes a second instance, so what the visitor types is held; the
// visitor reloads the page. The held message is not sent to anyone after
// the reload, and in the new round both the operator and the attacker
// answer (the attacker writing last): nothing typed after the reload
// reaches the attacker either.
func TestHostileReload(t *testing.T) {
	s := newHostile(t, hostileOpts{operator: true, operatorName: "Ada"})
	b := newBrowser(t)
	s.open(b)
	b.waitSentence(sentVerified)
	if err := s.att.StartAKE(s.ctx, 0); err != nil {
		t.Fatal(err)
	}
	s.waitAttacker(b, "the attacker's AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs == 1 })
	held := s.say(b, "before-reload")
	t.Logf("before the reload the message went to: %s", or(s.settle(held), "nobody within "+settleTime.String()))

	s.att.AnswerQueries(true)
	s.reload(b)
	s.waitAttacker(b, "the attacker's AKE after the reload", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 2 })
	if s.waitJS(b, `(() => { const r = `+widgetRoot+`; const l = r && r.querySelector('.s'); return l && (l.textContent === `+jsString(sentVerified)+` || l.textContent === `+jsString(sentUnverified)+`); })()`) {
		t.Logf("after the reload the visitor sees %q", b.securityText())
	}
	if err := s.att.Say(s.ctx, "Ada again, after your reload."); err != nil {
		t.Logf("the attacker could not write: %v", err)
	}
	after := s.say(b, "after-reload")
	t.Logf("after the reload the message went to: %s", or(s.settle(after), "nobody within "+settleTime.String()))
	if how, ok := s.att.Snapshot().Learned(held); ok {
		t.Errorf("the message held before the reload reached the attacker: it %s", how)
	}
	s.verdict(b)
}

// ---- the trust expectation of old: the attacker's key alone ----

// TestHostileAttackerKeyAlone: only the attacker answers, with its own key,
// on a page that pins the real one (the skin JSON lists the attacker's):
// the visitor reads the not-verified sentence and the verified one is
// never on the page.
func TestHostileAttackerKeyAlone(t *testing.T) {
	s := newHostile(t, hostileOpts{answerQueries: true, operatorName: "Ada"})
	b := newBrowser(t)
	s.open(b)
	b.waitSentence(sentUnverified)
	c := s.say(b, "attacker-alone")
	s.settle(c)
	w := s.verdict(b)
	s.noVerified(w, "the only key is the attacker's")
}
