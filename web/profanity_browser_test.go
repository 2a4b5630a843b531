package web_test

import (
	"context"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/internal/profanity"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/store"
)

// A real operator client behind the widget: Profanity 0.13 (driven in
// tmux by internal/profanity) logged in to the test Prosody as the skin's
// operator, with OMEMO. The visitor is the built widget in Chromium.
// Neither side was written for the other: the widget finds Profanity's
// device through its skin, Profanity finds the visitor's through the
// alias, and each decrypts what the other wrote.

const (
	profUser    = "prof"
	profAccount = profUser + "@" + xmpptest.Domain
	profSkin    = "shop"
)

// aliasText is a visitor's alias as Profanity shows it (store.NewGuestID:
// 16 characters of lower-case base32).
var aliasText = regexp.MustCompile(`guest-[a-z2-7]{16}@` + regexp.QuoteMeta(componentDomain))

// profanityDesk is the stack with Profanity as the only operator of skin
// "shop", available, with its OMEMO device trusted for the skin under the
// identity key Profanity shows. It returns that key too.
func profanityDesk(t *testing.T) (*stack, *profanity.Profanity, omemo.Fingerprint) {
	t.Helper()
	skinKey := key(t, "skin") // an OTR key Profanity does not hold: an OTR chat would not be verified
	s := newStack(t, []store.Skin{skinWithKey(profSkin, store.PolicyRequire, skinKey, opSpec{user: profUser, name: "Prof"})}, nil)

	host, port, err := net.SplitHostPort(s.srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	portN, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	p := profanity.Start(t, profanity.Config{JID: profAccount, Password: "pw-" + profUser, Host: host, Port: portN})
	t.Logf("Profanity logged in with OMEMO device %d in %v", p.DeviceID(), time.Since(began).Round(time.Millisecond))

	// The skin asked for Profanity's presence when the component started;
	// that request has scrolled away, and /sub allow approves it anyway.
	// The skin becoming available shows it worked.
	skinJ := profSkin + "@" + componentDomain
	p.Cmd("/sub allow " + skinJ)
	p.Cmd("/sub request " + skinJ)
	s.waitAvailable(profSkin)

	fp, err := omemo.ParseFingerprint(p.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.PutDevice(store.TrustedDevice{Skin: profSkin, Account: profAccount, Device: p.DeviceID(), Fingerprint: fp[:]}); err != nil {
		t.Fatalf("trusting Profanity's device: %v", err)
	}
	// The component reads the operator's devices at each assignment, but
	// uses a recent read that found none usable without reading again:
	// wait until a read finds Profanity's device, with its bundle and the
	// key Profanity shows, so that the chat below is OMEMO whenever the
	// visitor clicks.
	s.poll("the component to read Profanity's OMEMO device", func() bool {
		devs, err := s.comp.OperatorDevices(s.ctx, profAccount)
		return err == nil && len(devs) == 1 && devs[0].ID == p.DeviceID() && devs[0].HasBundle && devs[0].Fingerprint == fp
	})
	p.Cmd("/clear")
	return s, p, fp
}

// newAlias waits for a visitor alias on Profanity's screen that is not
// one of seen: the console tells of a message from a new contact.
func newAlias(t *testing.T, s *stack, p *profanity.Profanity, seen []string) string {
	t.Helper()
	var alias string
	s.poll("a new visitor on Profanity's screen", func() bool {
		for _, a := range aliasText.FindAllString(p.Screen(), -1) {
			if !slices.Contains(seen, a) {
				alias = a
				return true
			}
		}
		return false
	})
	return alias
}

// profanityShows waits for Profanity to show, decrypted with OMEMO (its
// "~" mark), a line alias wrote.
func profanityShows(t *testing.T, s *stack, p *profanity.Profanity, alias, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	p.WaitFor(ctx, regexp.MustCompile(`~ `+regexp.QuoteMeta(alias+": "+text)))
}

// chatWithProfanity is one visitor's chat on a verified page: the visitor
// writes, Profanity (the operator typing commands) reads it, turns OMEMO
// on and answers, and the widget shows the answer as from the trusted
// device. It returns the alias.
func chatWithProfanity(t *testing.T, s *stack, p *profanity.Profanity, page, url string, seen []string, canary, reply string) string {
	t.Helper()
	// The console in front, empty: the next alias there is this visitor's.
	p.Cmd("/win 1")
	p.Cmd("/clear")
	b := newBrowser(t)
	b.open(url)
	b.clickLauncher()
	b.waitSentence(sentVerified)
	if f := b.fetched(); !strings.Contains(f, "omemo-worker-") {
		t.Errorf("the OMEMO engine was not loaded for Profanity's chat; fetched: %s", f)
	}
	b.write(canary)
	alias := newAlias(t, s, p, seen)
	p.Cmd("/msg " + alias)
	profanityShows(t, s, p, alias, canary)

	// Profanity does not turn OMEMO on by itself in a window a message
	// opened: the operator does, then answers.
	p.Cmd("/omemo start")
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	p.WaitFor(ctx, regexp.MustCompile(`\[OMEMO\]`))
	p.Cmd(reply)
	b.waitMessage(reply)
	if got := b.eval(`[...` + widgetRoot + `.querySelectorAll('.m li.them')].filter((li) => li.textContent.includes(` + jsString(reply) + `))
	  .map((li) => li.dataset.mark === undefined ? 'unmarked' : 'marked ' + li.dataset.mark).join('|')`); got != "unmarked" {
		t.Errorf("Profanity's answer from the trusted device is shown as %q, want one unmarked line", got)
	}
	if got := b.securityText(); got != sentVerified {
		t.Errorf("after Profanity answered the line reads %q", got)
	}
	b.screenshot(page + "-profanity-answered")
	return alias
}

// TestProfanityOperatorVerified: with Profanity's device trusted for the
// skin, the visitor sees the verified sentence, on a page that takes the
// skin's published keys and on a page that pins Profanity's key itself,
// and messages cross both ways.
func TestProfanityOperatorVerified(t *testing.T) {
	s, p, fp := profanityDesk(t)
	// The skin publishes exactly Profanity's key: the unpinned page trusts that.
	first := chatWithProfanity(t, s, p, "unpinned", pageURL(s, "/", profSkin, ""), nil, "canary-unpinned-Wq4e", "reply-unpinned-Lp7s")
	pin, _ := fp.MarshalText()
	chatWithProfanity(t, s, p, "pinned", pageURL(s, "/", profSkin, string(pin)), []string{first}, "canary-pinned-Rt2x", "reply-pinned-Mv9c")
}

// TestProfanityOperatorNotVerified: the skin trusts Profanity's device (so
// the chat is OMEMO), but the page pins another OMEMO key: for the
// visitor Profanity is not the published operator. The widget says so,
// and Profanity gets nothing until the visitor chooses to send.
func TestProfanityOperatorNotVerified(t *testing.T) {
	s, p, _ := profanityDesk(t)
	b := newBrowser(t)
	b.open(pageURL(s, "/", profSkin, strings.Repeat("0123abcd", 8)))
	b.clickLauncher()
	b.waitSentence(sentUnverified)
	// The component told Profanity of the new chat (from the alias): the
	// operator opens it, where the visitor's lines would show.
	alias := newAlias(t, s, p, nil)
	p.Cmd("/msg " + alias)
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	p.WaitFor(ctx, regexp.MustCompile(regexp.QuoteMeta(alias)+`: New chat on `))

	const canary = "canary-held-Hn5d"
	b.write(canary)
	b.waitFor("the message held, and the choice offered", `(() => { const r = `+widgetRoot+`;
	  const li = [...r.querySelectorAll('.m li.me')].find((li) => li.textContent.includes(`+jsString(canary)+`));
	  const c = r.querySelector('button.confirm');
	  return li && li.dataset.state === 'held' && c && !c.closest('[hidden]'); })()`)
	b.screenshot("held-for-profanity")
	// A bounded look at the chat's window for something that must not
	// happen; the steps below check that it does arrive once allowed.
	if strings.Contains(screenFor(t, p, 2*time.Second, canary), canary) {
		t.Fatal("Profanity read the message before the visitor chose to send it (its screen follows)")
	}
	b.do("choosing to send", chromedp.Click(inWidget("button.confirm")))
	profanityShows(t, s, p, alias, canary)
	if got := b.securityText(); got != sentUnverified {
		t.Errorf("after the choice the line reads %q", got)
	}
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Errorf("the page contains %q while the pinned key is not Profanity's", sentVerified)
	}
}

// screenFor watches Profanity's screen for at most d, or until it shows
// text, and returns the last screen read.
func screenFor(t *testing.T, p *profanity.Profanity, d time.Duration, text string) string {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		scr := p.Screen()
		if strings.Contains(scr, text) {
			return scr
		}
		select {
		case <-deadline.C:
			return scr
		case <-tick.C:
		}
	}
}
