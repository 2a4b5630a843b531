package web_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/store"
)

// The widget with an operator who answers from OMEMO clients (the Go bot
// with two devices on one account: a desktop and a phone). The component
// is the real one, on a real Prosody with PEP; the widget is the built
// one, in Chromium.

// omemoShop is a skin whose operator Olga has OMEMO devices (and the
// skin's OTR key too: the chat is OMEMO because the skin trusts her
// devices). trust names which of her devices the skin trusts.
func omemoShop(t testing.TB, devices int, trust func(i int) bool) (*stack, *operator.Bot) {
	t.Helper()
	skinKey := key(t, "skin")
	op := opSpec{user: "olga", name: "Olga", key: skinKey, omemo: devices}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op})
	bot := s.bots["olga"]
	for i, d := range bot.Devices() {
		if !trust(i) {
			continue
		}
		if err := s.st.PutDevice(store.TrustedDevice{Skin: "shop", Account: "olga@" + xmpptest.Domain, Device: d.ID, Fingerprint: d.Fingerprint[:]}); err != nil {
			t.Fatalf("trusting device %d: %v", d.ID, err)
		}
	}
	s.waitAvailable("shop")
	return s, bot
}

// read waits for the operator to read text, however it came.
func read(t *testing.T, s *stack, bot *operator.Bot, text string) operator.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	ev, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message && e.Text == text })
	if err != nil {
		t.Fatalf("operator waiting for %q: %v", text, err)
	}
	return ev
}

// nextOMEMO waits for the operator to read text over OMEMO.
func nextOMEMO(t *testing.T, s *stack, bot *operator.Bot, text string) operator.Event {
	t.Helper()
	ev := read(t, s, bot, text)
	if !ev.OMEMO || !ev.Encrypted {
		t.Fatalf("operator read %q, but not over OMEMO (omemo %v, encrypted %v)", text, ev.OMEMO, ev.Encrypted)
	}
	return ev
}

// fetched lists the widget assets the page fetched (resource timing).
func (b *browser) fetched() string {
	return b.eval(`performance.getEntriesByType('resource').map((e) => e.name.replace(/^.*\//, '')).join(' ')`)
}

func TestOMEMOVerifiedBothWays(t *testing.T) {
	s, bot := omemoShop(t, 2, func(int) bool { return true })
	devs := bot.Devices()
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	if f := b.fetched(); !strings.Contains(f, "omemo-worker-") {
		t.Errorf("the OMEMO engine was not loaded for a skin with OMEMO keys; fetched: %s", f)
	}
	b.write("Hello over OMEMO")
	ev := nextOMEMO(t, s, bot, "Hello over OMEMO")
	// Both of the operator's trusted devices could read it: desktop and phone.
	if !slices.Equal(ev.Devices, []uint32{devs[0].ID, devs[1].ID}) && !slices.Equal(ev.Devices, []uint32{devs[1].ID, devs[0].ID}) {
		t.Errorf("decrypted by devices %v, want both of %v", ev.Devices, bot.DeviceIDs())
	}
	b.waitMessage("Operator read: Hello over OMEMO")
	if err := bot.SayFrom(s.ctx, ev.Alias, devs[1].ID, "Hello from the phone"); err != nil {
		t.Fatal(err)
	}
	b.waitMessage("Hello from the phone")
	if got := b.eval(`[...` + widgetRoot + `.querySelectorAll('.m li[data-mark]')].map((li) => li.textContent).join('|')`); got != "" {
		t.Errorf("messages from the operator's trusted devices are marked: %s", got)
	}
	if got := b.securityText(); got != sentVerified {
		t.Errorf("the line reads %q after the exchange", got)
	}

	// A reload keeps the OMEMO sessions: both ways work without new keys.
	b.open(pageURL(s, "/other", "shop", ""))
	b.waitFor("the chat to come back", widgetRoot+` && !!`+widgetRoot+`.querySelector('textarea')`)
	b.waitSentence(sentVerified)
	b.write("After the reload")
	nextOMEMO(t, s, bot, "After the reload")
	b.waitMessage("Operator read: After the reload")
	if v := b.cspViolations(); len(v) > 0 {
		t.Errorf("CSP violations:\n%s", strings.Join(v, "\n"))
	}
}

func TestOMEMOUntrustedDeviceGetsNothing(t *testing.T) {
	// The operator's phone is not trusted for the skin (yet): the chat is
	// verified, and only the desktop can read what the visitor writes.
	s, bot := omemoShop(t, 2, func(i int) bool { return i == 0 })
	devs := bot.Devices()
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("only for the desktop")
	ev := nextOMEMO(t, s, bot, "only for the desktop")
	if !slices.Equal(ev.Devices, []uint32{devs[0].ID}) {
		t.Errorf("decrypted by devices %v, want only the trusted %d", ev.Devices, devs[0].ID)
	}
	// The phone writes anyway: shown, but not as from the described session.
	if err := bot.SayFrom(s.ctx, ev.Alias, devs[1].ID, "from the untrusted phone"); err != nil {
		t.Fatal(err)
	}
	b.waitMessage("from the untrusted phone")
	if got := b.eval(`[...` + widgetRoot + `.querySelectorAll('.m li[data-mark="other-session"]')].map((li) => li.textContent).join('|')`); !strings.Contains(got, "from the untrusted phone") {
		t.Errorf("the untrusted device's message is not marked as from another session: %q", got)
	}
	if got := b.securityText(); got != sentVerified {
		t.Errorf("the line reads %q", got)
	}
}

func TestOMEMOPinnedOtherKeyNeedsConsent(t *testing.T) {
	// The skin trusts Olga's device, but the page pins another OMEMO key:
	// the page wins, the chat is not verified, and nothing goes until the
	// visitor chooses.
	s, bot := omemoShop(t, 1, func(int) bool { return true })
	pin := strings.Repeat("0123abcd", 8)
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", pin))
	b.clickLauncher()
	b.waitSentence(sentUnverified)
	b.write("held until I choose")
	b.waitHeldWithChoice("held until I choose")
	if _, err := bot.Next(shortCtx(t, s), func(e operator.Event) bool { return e.Kind == operator.Message }); err == nil {
		t.Fatal("the operator read a message before the visitor chose")
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	b.do("choosing to send", chromedp.Click(inWidget("button.confirm")))
	ev, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message && e.Text == "held until I choose" })
	if err != nil || !ev.OMEMO {
		t.Fatalf("after the choice the operator did not read the message over OMEMO: %v (omemo %v)", err, ev.OMEMO)
	}
	if got := b.securityText(); got != sentUnverified {
		t.Errorf("the line reads %q after the choice", got)
	}
}

func TestOMEMONotLoadedForOTROnlySkin(t *testing.T) {
	s := shopWithAda(t)
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	if f := b.fetched(); strings.Contains(f, "omemo") {
		t.Errorf("a skin without OMEMO keys loaded the OMEMO engine: %s", f)
	}
}

// shortCtx bounds a wait for something that must NOT happen: it ends the
// wait, it is not a timing assertion (whatever happens later is checked
// again by the steps after it).
func shortCtx(t *testing.T, s *stack) context.Context {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestOMEMOTransferToOTRAndBack(t *testing.T) {
	// Olga answers from OMEMO devices the skin trusts; Ada has only the
	// skin's OTR key. A transfer either way is a fresh start in the other
	// protocol, and the line is verified each time.
	skinKey := key(t, "skin")
	olga := opSpec{user: "olga", name: "Olga", key: skinKey, omemo: 1}
	ada := opSpec{user: "ada", name: "Ada", key: skinKey}
	// Ada is not on duty at first, so the chat goes to Olga.
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, olga, ada)}, []opSpec{olga})
	olgaBot := s.bots["olga"]
	d := olgaBot.Devices()[0]
	if err := s.st.PutDevice(store.TrustedDevice{Skin: "shop", Account: "olga@" + xmpptest.Domain, Device: d.ID, Fingerprint: d.Fingerprint[:]}); err != nil {
		t.Fatal(err)
	}
	s.waitAvailable("shop")
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("to Olga over OMEMO")
	ev := nextOMEMO(t, s, olgaBot, "to Olga over OMEMO")
	alias := strings.TrimSuffix(ev.Alias, "@"+componentDomain)
	// Her answer arrives before the transfer: one that came after it would
	// rightly be shown as not from the session then described.
	b.waitMessage("Operator read: to Olga over OMEMO")

	adaBot := s.startOperator(ada)
	waitService(t, s, adaBot)
	if err := olgaBot.Command(s.ctx, "transfer "+alias+" ada@"+xmpptest.Domain); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the new operator's name", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent.includes('Ada'); })()`)
	b.waitSentence(sentVerified)
	b.write("to Ada over OTR")
	nextMessage(t, s.ctx, adaBot, "to Ada over OTR")
	b.waitMessage("Operator read: to Ada over OTR")

	if err := adaBot.Command(s.ctx, "transfer "+alias+" olga@"+xmpptest.Domain); err != nil {
		t.Fatal(err)
	}
	b.waitFor("Olga again", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent.includes('Olga'); })()`)
	b.waitSentence(sentVerified)
	b.write("back to Olga")
	nextOMEMO(t, s, olgaBot, "back to Olga")
	b.waitMessage("Operator read: back to Olga")
	if all := b.eval(`[...` + widgetRoot + `.querySelectorAll('.m li[data-mark]')].map((li) => li.textContent).join('|')`); all != "" {
		t.Errorf("marked lines after the transfers: %s", all)
	}
}

// waitService waits for the component's answer to the bot's "on".
func waitService(t *testing.T, s *stack, bot *operator.Bot) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	if _, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Service }); err != nil {
		t.Fatalf("no answer to \"on\": %v", err)
	}
}

func TestOMEMOSignerKeyring(t *testing.T) {
	// A page that pins the admin's signer: an operator's OMEMO device is
	// trusted when the signed keyring lists its key (kind omemo). Without
	// one the widget does not even load the OMEMO engine, and the chat is
	// OTR; with another OMEMO key listed, the OMEMO chat is not verified.
	skinKey := key(t, "skin")
	op := opSpec{user: "olga", name: "Olga", key: skinKey, omemo: 1}
	s := newSignerStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op})
	bot := s.bots["olga"]
	d := bot.Devices()[0]
	if err := s.st.PutDevice(store.TrustedDevice{Skin: "shop", Account: "olga@" + xmpptest.Domain, Device: d.ID, Fingerprint: d.Fingerprint[:]}); err != nil {
		t.Fatal(err)
	}
	s.waitAvailable("shop")
	sign := func(serial uint64, omemoKeys ...string) []byte {
		k := keyring.Keyring{Skin: "shop", Serial: serial, NotAfter: time.Now().Add(time.Hour).Truncate(time.Second),
			Keys: []keyring.Key{{Kind: keyring.KindOTR, Value: strings.ToUpper(skinKey.PublicKey.Fingerprint().Hex())}}}
		for _, v := range omemoKeys {
			k.Keys = append(k.Keys, keyring.Key{Kind: keyring.KindOMEMO, Value: v})
		}
		b, err := keyring.Sign(k, s.signer)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b := newBrowser(t)
	next := func(text string) operator.Event { return read(t, s.stack, bot, text) }

	s.publish(sign(1, d.Hex()))
	s.openChat(b)
	b.waitSentence(sentVerified)
	b.write("keyring with the OMEMO key")
	if ev := next("keyring with the OMEMO key"); !ev.OMEMO {
		t.Error("the keyring lists the operator's OMEMO key, but the chat was not OMEMO")
	}
	b.do("ending the chat", chromedp.Click(inWidget("button.end")))

	s.publish(sign(2))
	s.openChat(b)
	b.waitSentence(sentVerified)
	b.write("keyring without OMEMO keys")
	if ev := next("keyring without OMEMO keys"); ev.OMEMO || !ev.Encrypted {
		t.Errorf("without an OMEMO key in the keyring the chat must be OTR (omemo %v, encrypted %v)", ev.OMEMO, ev.Encrypted)
	}
	if f := b.fetched(); strings.Contains(f, "omemo-worker-") {
		t.Errorf("the OMEMO engine was loaded although the keyring has no OMEMO key: %s", f)
	}
	b.do("ending the chat", chromedp.Click(inWidget("button.end")))

	s.publish(sign(3, strings.Repeat("5a", 32)))
	s.openChat(b)
	b.waitSentence(sentUnverified)
	if w := s.watchOf(b); w.VerifiedAt >= 0 {
		t.Errorf("the page said %q with an OMEMO key the keyring does not list", sentVerified)
	}
}

// watchOf reads the page watch (watchJS) of a signer stack's page.
func (s *signerStack) watchOf(b *browser) watch {
	var w watch
	if err := json.Unmarshal([]byte(b.eval(`JSON.stringify(window.__hostile)`)), &w); err != nil {
		b.failf("reading the page watch: %v", err)
	}
	return w
}
