package web_test

// Browser tests of a chat that outlives what goes wrong under it: otrdesk's
// component killed and started again while the visitor types (the XMPP
// server bounces what the widget sends meanwhile; the widget sends the very
// same ciphertext again once the service answers), and a network drop after
// which the widget logs in again and takes the same chat back with its
// resumption secret (or, with a wrong one, is refused and starts a new chat).
// The stack, browser and helpers are those of browser_test.go.

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// The widget's words for a message's delivery and for a resumed chat
// (web/src/strings.js).
const (
	wordsPending       = "Not delivered yet — will be sent again when the chat service is back"
	wordsDeliveredLate = "Delivered after the chat service came back"
	noteResumed        = "Reconnected to the same chat."
	noteResumeRefused  = "Your earlier chat could not be continued, so a new chat has started."
	noteNewChat        = "A new chat has started."
)

// liveComponent is the component the HTTP side asks (for /readyz and
// availability) across a restart: whichever one runs now.
type liveComponent struct {
	mu sync.Mutex
	c  *component.Component
}

func (l *liveComponent) get() *component.Component {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

func (l *liveComponent) Ready() (bool, string)      { return l.get().Ready() }
func (l *liveComponent) Available(skin string) bool { return l.get().Available(skin) }

// killable is a stack whose component can be killed (its Run cancelled:
// the server sees the connection drop, no goodbye is sent) and started
// again on the same store, as after kill -9 and a restart.
type killable struct {
	*stack
	cfg   component.Config
	live  *liveComponent
	stop  func()           // kills the running component and waits for it
	watch *xmpptest.Client // an account that pings the skin to see the service from the server's side
}

// newKillable builds the stack of browser_test.go's newStack with a
// component it can kill and start again: the shop skin, Ada on duty.
func newKillable(t *testing.T) *killable {
	t.Helper()
	dist := assets(t)
	skinKey := key(t, "skin")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	s := &stack{t: t, ctx: ctx, bots: map[string]*operator.Bot{}, clients: map[string]*xmpptest.Client{}}
	s.srv = xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{componentDomain: componentSecret}})
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	s.st = st
	if err := st.CreateSkin(skinWithKey("shop", store.PolicyRequire, skinKey, op)); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ada", "watch"} {
		if _, err := s.srv.Register(ctx, u, "pw-"+u); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	k := &killable{stack: s, live: &liveComponent{}, cfg: component.Config{
		Domain: componentDomain, Server: s.srv.ComponentAddr, Secret: componentSecret,
		AnonymousDomain: xmpptest.AnonDomain, Logger: logger,
	}}
	k.start()
	t.Cleanup(func() { k.stop() })

	wl := listen(t)
	s.widgetURL = "http://" + wl.Addr().String()
	serve(t, wl, web.New(web.Config{
		PublicURL: s.widgetURL, BOSHURL: s.srv.BOSHURL, AnonymousDomain: xmpptest.AnonDomain,
		ComponentDomain: componentDomain, Store: st, Component: k.live, Logger: logger, Assets: dist,
	}))
	pl := listen(t)
	s.pageURL = "http://localhost:" + portOf(pl.Addr())
	serve(t, pl, s.sitePages())
	s.startOperator(op)
	s.waitAvailable("shop")
	if k.watch, err = s.srv.Dial(ctx, "watch", "pw-watch", "watch"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.watch.Close() })
	return k
}

// waitGone waits until the server bounces what is sent to the skin: it
// has seen the component's connection drop.
func (k *killable) waitGone() {
	k.t.Helper()
	k.poll("the server to see the component gone", func() bool {
		// A ping that reached the dying connection is never answered:
		// each one waits a little only, then the next goes.
		ctx, cancel := context.WithTimeout(k.ctx, 2*time.Second)
		defer cancel()
		return errors.Is(k.watch.Ping(ctx, "shop@"+componentDomain), xmpptest.ErrIQ)
	})
}

// start runs a new component on the stack's store and waits until it is
// ready.
func (k *killable) start() {
	k.t.Helper()
	c, err := component.New(k.cfg, k.st)
	if err != nil {
		k.t.Fatalf("component.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	k.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				k.t.Logf("component: %v", err)
			}
		})
	}
	k.comp = c
	k.live.mu.Lock()
	k.live.c = c
	k.live.mu.Unlock()
	k.poll("the component to be ready", func() bool { ok, _ := c.Ready(); return ok })
}

// mine is a JS expression for the visitor's transcript line holding text.
func mine(text string) string {
	return `[...` + widgetRoot + `.querySelectorAll('.m li.me')].find((li) => li.textContent.includes(` + jsString(text) + `))`
}

func (b *browser) hasNote(text string) bool {
	return b.eval(`String([...`+widgetRoot+`.querySelectorAll('.m li.note')].some((li) => li.textContent.startsWith(`+jsString(text)+`)))`) == "true"
}

func (b *browser) waitNote(text string) {
	b.t.Helper()
	b.waitFor("the note "+text, `[...`+widgetRoot+`.querySelectorAll('.m li.note')].some((li) => li.textContent.startsWith(`+jsString(text)+`))`)
}

// noMore fails when the bot has an event matching m that the test has not
// taken yet. Called after a later message arrived: the server and otrdesk
// keep one chat's order, so a duplicate would have come before it.
func noMore(t *testing.T, bot *operator.Bot, what string, m func(operator.Event) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ev, err := bot.Next(ctx, m); err == nil {
		t.Errorf("the operator saw %s: %+v", what, ev)
	}
}

func TestComponentKilledWhileTyping(t *testing.T) {
	k := newKillable(t)
	bot := k.bots["ada"]
	b := newBrowser(t)

	b.open(pageURL(k.stack, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("before the outage")
	first := nextMessage(t, k.ctx, bot, "before the outage")
	b.waitMessage("Operator read: before the outage")
	b.waitFor("the first message delivered", mine("before the outage")+`?.dataset.state === 'delivered'`)

	// otrdesk dies; Prosody stays up and bounces what reaches it for the
	// component.
	k.stop()
	k.waitGone()
	b.write("typed during the outage")
	b.waitFor("the message pending, in words", mine("typed during the outage")+`?.textContent.includes(`+jsString(wordsPending)+`)`)
	if got := b.securityText(); got != sentVerified {
		t.Errorf("during the outage the security line reads %q; the session is the same one", got)
	}
	b.screenshot("pending")

	k.start()
	back := time.Now()
	ev := nextMessage(t, k.ctx, bot, "typed during the outage")
	t.Logf("the message typed during the outage reached the operator %v after otrdesk was ready again", time.Since(back).Round(time.Millisecond))
	if ev.Alias != first.Alias {
		t.Errorf("the message came from %s, the chat is %s", ev.Alias, first.Alias)
	}
	b.waitFor("the message delivered, in words", mine("typed during the outage")+`?.dataset.state === 'delivered' && `+
		mine("typed during the outage")+`.textContent.includes(`+jsString(wordsDeliveredLate)+`)`)
	b.waitMessage("Operator read: typed during the outage")
	b.screenshot("delivered")

	// Exactly once: a later message arrives, and no second copy (nor the
	// error a replayed OTR message makes) came before it.
	b.write("after the restart")
	nextMessage(t, k.ctx, bot, "after the restart")
	noMore(t, bot, "the outage message twice", func(e operator.Event) bool { return e.Text == "typed during the outage" })
	noMore(t, bot, "an OTR error", func(e operator.Event) bool { return e.Kind == operator.Failure })
	if got := b.securityText(); got != sentVerified {
		t.Errorf("after the restart the security line reads %q", got)
	}
}

// boshJID is the JID of the widget's current BOSH session, as Strophe keeps it.
func (b *browser) boshJID() string {
	return b.eval(`(() => { try { return JSON.parse(sessionStorage.getItem('strophe-bosh-session') || '{}').jid || ''; } catch { return ''; } })()`)
}

func TestNetworkDropResumesChat(t *testing.T) {
	s := shopWithAda(t)
	bot := s.bots["ada"]
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("before the drop")
	first := nextMessage(t, s.ctx, bot, "before the drop")
	b.waitMessage("Operator read: before the drop")
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	if _, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure && e.Alias == first.Alias }); err != nil {
		t.Fatalf("the first AKE: %v", err)
	}
	oldJID := b.boshJID()
	if oldJID == "" {
		t.Fatal("no BOSH session in sessionStorage")
	}
	if got := b.eval(`(() => { const v = JSON.parse(sessionStorage.getItem('otrdesk:shop') || '{}'); return typeof v.resume === 'string' && v.resume.length >= 22 ? 'kept' : 'missing'; })()`); got != "kept" {
		t.Fatalf("the resumption secret is %s in sessionStorage", got)
	}
	if got := b.eval(`String(Object.keys(localStorage).filter((k) => (localStorage.getItem(k) || '').includes(JSON.parse(sessionStorage.getItem('otrdesk:shop')).resume)).length)`); got != "0" {
		t.Errorf("the resumption secret is in localStorage too (%s keys)", got)
	}

	// The network goes away; the widget gives its BOSH session up (as the
	// server does after its inactivity timeout) and logs in again when the
	// network is back.
	b.network(false)
	b.waitFor("the reconnecting state", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent === 'Connection lost. Reconnecting…'; })()`)
	b.write("typed while offline")
	b.screenshot("offline")
	b.network(true)
	b.waitNote(noteResumed)
	b.waitSentence(sentVerified)
	if _, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure && e.Alias == first.Alias }); err != nil {
		t.Fatalf("no fresh AKE with the same alias after the drop: %v", err)
	}
	if newJID := b.boshJID(); newJID == oldJID || newJID == "" {
		t.Errorf("the widget's JID after the drop is %q, before %q: not a new login", newJID, oldJID)
	}
	again := nextMessage(t, s.ctx, bot, "typed while offline")
	if again.Alias != first.Alias {
		t.Errorf("after the drop the operator talks with %s, before with %s: not the same chat", again.Alias, first.Alias)
	}
	b.waitMessage("Operator read: typed while offline")
	if b.hasNote(noteNewChat) || b.hasNote(noteResumeRefused) {
		t.Error("the widget says a new chat started, yet it is the same chat")
	}
	b.waitFor("the transcript before the drop", mine("before the drop"))
	if n := b.eval(`String([...` + widgetRoot + `.querySelectorAll('.m li.note')].filter((li) => li.textContent === 'Ada joined the chat.').length)`); n != "1" {
		t.Errorf("the transcript says %s times that Ada joined; she joined once", n)
	}
	b.screenshot("resumed")
}

func TestWrongResumeSecretStartsNewChat(t *testing.T) {
	s := shopWithAda(t)
	bot := s.bots["ada"]
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("in the first chat")
	first := nextMessage(t, s.ctx, bot, "in the first chat")

	// The BOSH session is gone and the kept secret is not the chat's (the
	// right length and alphabet, wrong bits): the page is loaded again.
	// (Changed as the page goes away: Strophe writes its session on every
	// request until then.)
	b.eval(`(() => { addEventListener('pagehide', () => {
	  const v = JSON.parse(sessionStorage.getItem('otrdesk:shop'));
	  v.resume = 'AAAAAAAAAAAAAAAAAAAAAAAA'; sessionStorage.setItem('otrdesk:shop', JSON.stringify(v));
	  sessionStorage.removeItem('strophe-bosh-session'); }); return ''; })()`)
	b.do("reloading", chromedp.Reload())
	b.waitNote(noteResumeRefused)
	b.waitSentence(sentVerified)
	if b.hasNote(noteResumed) {
		t.Error("the widget says the chat was taken back, yet the secret was wrong")
	}
	b.screenshot("refused")
	b.write("in the second chat")
	second := nextMessage(t, s.ctx, bot, "in the second chat")
	if second.Alias == first.Alias {
		t.Errorf("a wrong secret took the chat %s back", first.Alias)
	}
	b.waitMessage("Operator read: in the second chat")
	if got := b.eval(`String(JSON.parse(sessionStorage.getItem('otrdesk:shop')).resume !== 'AAAAAAAAAAAAAAAAAAAAAAAA')`); got != "true" {
		t.Error("the refused secret is still kept")
	}
	if !strings.Contains(b.eval(`(() => { const r = `+widgetRoot+`; return r.querySelector('.q').textContent; })()`), "Ada") {
		t.Error("the new chat does not name its operator")
	}
}

func TestProofOfWorkOverNewChatRate(t *testing.T) {
	skinKey := key(t, "skin")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	const bits = component.DefaultProofOfWorkBits
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op}, func(c *component.Config) {
		c.NewChatsPerMinute = 1 // the first chat takes the minute's only token
		c.ProofOfWork = true
		c.ProofOfWorkBits = bits
	})
	s.waitAvailable("shop")
	bot := s.bots["ada"]
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("in the first chat")
	first := nextMessage(t, s.ctx, bot, "in the first chat")
	if n := b.eval(`String(performance.getEntriesByName('otrdesk:pow-start').length)`); n != "0" {
		t.Fatalf("the first chat of the minute needed proof of work (%s stamps)", n)
	}

	// A second chat within the minute: over the rate, the service asks for
	// a stamp, the widget computes it and the chat starts.
	b.do("ending the chat", chromedp.Click(inWidget("button.end")))
	b.waitFor("the new-chat button", widgetRoot+`.querySelector('button.new') && !`+widgetRoot+`.querySelector('button.new').hidden`)
	b.do("starting a new chat", chromedp.Click(inWidget("button.new")))
	b.waitSentence(sentVerified)
	b.write("in the second chat")
	second := nextMessage(t, s.ctx, bot, "in the second chat")
	if second.Alias == first.Alias {
		t.Fatalf("the second chat has the first one's alias %s", first.Alias)
	}
	b.waitMessage("Operator read: in the second chat")
	ms := b.eval(`(() => { const a = performance.getEntriesByName('otrdesk:pow-start'), z = performance.getEntriesByName('otrdesk:pow-done');
	  return a.length === 1 && z.length === 1 ? (z[0].startTime - a[0].startTime).toFixed(0) : 'stamps: ' + a.length + '/' + z.length; })()`)
	if strings.HasPrefix(ms, "stamps") {
		t.Fatalf("the second chat was not asked for exactly one stamp (%s)", ms)
	}
	t.Logf("proof of work at %d bits: %s ms from the challenge to the stamp (the worker starting included)", bits, ms)
	if got := b.eval(`(() => { const e = ` + widgetRoot + `.querySelector('.e'); return e && !e.hidden ? e.textContent : ''; })()`); got != "" {
		t.Errorf("the widget shows an error after the stamp: %q", got)
	}
}
