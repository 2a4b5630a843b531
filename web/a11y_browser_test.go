package web_test

// Accessibility of the widget, checked the way an auditor would: axe-core
// (from npm, a devDependency, injected by the test only) on a phone-sized
// screen for every state a visitor can meet, and by hand for what an
// automated audit cannot see: what a screen reader is told when, a 200 %
// zoom, and a visitor who asked the system for less motion.
//
// axe-core is evaluated through the DevTools protocol (Runtime.evaluate),
// which the page's Content-Security-Policy does not govern: the page keeps
// its strict policy, and nothing of axe reaches a visitor.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/store"
)

// axeTags are the rule sets the widget must pass: WCAG 2.0, 2.1 and 2.2,
// levels A and AA.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

var (
	axeOnce sync.Once
	axeJS   string
	axeErr  error
)

func axeSource(t testing.TB) string {
	t.Helper()
	axeOnce.Do(func() {
		var b []byte
		b, axeErr = os.ReadFile(filepath.Join("node_modules", "axe-core", "axe.min.js"))
		axeJS = string(b)
	})
	if axeErr != nil {
		t.Fatalf("axe-core is missing (%v): run make build, which installs web/node_modules", axeErr)
	}
	return axeJS
}

// audit runs axe-core on the whole page (the widget's shadow root
// included) and fails the test with every violation, named and located.
func audit(t *testing.T, b *browser, state string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource(t)+"\n;true")); err != nil {
		b.failf("injecting axe-core: %v", err)
	}
	tags, _ := json.Marshal(axeTags)
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, { runOnly: { type: 'tag', values: `+string(tags)+` }, resultTypes: ['violations'] })
	  .then((r) => JSON.stringify(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
	    nodes: v.nodes.map((n) => n.target.join(' > ') + ': ' + n.failureSummary) })))) `, chromedp.EvalAwaitPromise))
	if err != nil {
		b.failf("running axe-core: %v", err)
	}
	var violations []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal([]byte(out), &violations); err != nil {
		t.Fatalf("reading axe-core's answer: %v", err)
	}
	b.screenshot("a11y-" + state)
	for _, v := range violations {
		t.Errorf("%s: axe %s (%s): %s\n  %s", state, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
	if len(violations) == 0 {
		t.Logf("%s: axe-core (%s): no violations", state, strings.Join(axeTags, ", "))
	}
}

func phone(b *browser) {
	b.do("a phone-sized viewport", chromedp.EmulateViewport(375, 667, chromedp.EmulateScale(2)))
}

// liveRegions checks what a screen reader is told, and fails on any
// region that would make it say something twice: the security line is a
// status region and its sentence is in no other live region; the queue
// and chat status is a polite region; errors are alerts; the transcript
// is a polite log; no live region sits inside another one (its changes
// would be announced by both).
const liveRegions = `(() => { const r = ` + widgetRoot + `; const out = [];
  const live = [...r.querySelectorAll('[aria-live], [role=status], [role=alert], [role=log]')]
    .filter((e) => e.getAttribute('aria-live') !== 'off');
  for (const e of live) { let p = e.parentElement;
    while (p) { if (live.includes(p)) out.push('a live region inside another: ' + e.className + ' in ' + p.className); p = p.parentElement; } }
  const s = r.querySelector('.s');
  if (!s || s.getAttribute('role') !== 'status') out.push('the security line is not a status region');
  for (const e of live) if (e !== s && s && s.textContent && e.textContent.includes(s.textContent)) out.push('the security sentence is also in ' + e.className);
  const q = r.querySelector('.q');
  if (!q || q.getAttribute('aria-live') !== 'polite') out.push('the chat status is not a polite live region');
  for (const e of r.querySelectorAll('.e')) if (e.getAttribute('role') !== 'alert') out.push('an error line is not an alert: ' + e.className);
  const m = r.querySelector('.m');
  if (!m || m.getAttribute('role') !== 'log' || m.getAttribute('aria-live') !== 'polite') out.push('the transcript is not a polite log');
  return out.join('\n'); })()`

// sentenceWatch records every text the security line is given, from
// before the click on.
const sentenceWatch = `(() => { window.__lines = []; const r = ` + widgetRoot + `;
  const look = () => { const s = r.querySelector('.s'); if (!s) return; const t = s.textContent;
    if (!s.__watched) { s.__watched = true; new MutationObserver(() => window.__lines.push(s.textContent)).observe(s, { childList: true, characterData: true, subtree: true }); window.__lines.push(t); } };
  new MutationObserver(look).observe(r, { childList: true, subtree: true }); look(); return ''; })()`

func TestAccessibleOpenChat(t *testing.T) {
	s := shopWithAda(t)
	b := newBrowser(t)
	phone(b)
	b.open(pageURL(s, "/", "shop", ""))
	audit(t, b, "launcher")
	b.eval(sentenceWatch)
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("Hello, can you read me?")
	b.waitMessage("Operator read: Hello, can you read me?")
	audit(t, b, "open-chat")
	if got := b.eval(liveRegions); got != "" {
		t.Errorf("live regions:\n%s", got)
	}

	// The sentence is announced once per change: every text the line was
	// given differs from the one before, and the verified sentence was
	// given once.
	var lines []string
	if err := json.Unmarshal([]byte(b.eval(`JSON.stringify(window.__lines)`)), &lines); err != nil {
		t.Fatal(err)
	}
	verified := 0
	for i, l := range lines {
		if i > 0 && l == lines[i-1] {
			t.Errorf("the security line was given %q twice in a row: %q", l, lines)
		}
		if l == sentVerified {
			verified++
		}
	}
	if verified != 1 {
		t.Errorf("the verified sentence was written %d times, want once: %q", verified, lines)
	}
	// A new message from the operator is one new item of the log, and the
	// typing indicator is not a live region (it would talk over it).
	if got := b.eval(`(() => { const r = ` + widgetRoot + `; return [...r.querySelectorAll('.m li.them')].filter((li) => li.textContent.includes('Operator read: Hello, can you read me?')).length + ' ' +
	  [...r.querySelectorAll('.q')].filter((q) => q !== r.querySelector('.q')).map((q) => q.getAttribute('aria-live')).join(','); })()`); got != "1 off" && got != "1 " {
		t.Errorf("operator message items / typing line aria-live = %q, want one item and a silent typing line", got)
	}
}

func TestAccessibleQueuedOfflineAndErrors(t *testing.T) {
	skinKey := key(t, "skin")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	nobody := skinWithKey("closed", store.PolicyRequire, skinKey, opSpec{user: "ghost"})
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op), nobody}, []opSpec{op},
		func(c *component.Config) { c.MaxChatsPerOperator = 1 })
	s.waitAvailable("shop")

	first := newBrowser(t)
	first.open(pageURL(s, "/", "shop", ""))
	first.clickLauncher()
	first.waitSentence(sentVerified)

	queued := newBrowser(t)
	phone(queued)
	queued.open(pageURL(s, "/", "shop", ""))
	queued.clickLauncher()
	queued.waitFor("the queue position", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && /number 1 in the queue/.test(q.textContent); })()`)
	audit(t, queued, "queued")
	if got := queued.eval(liveRegions); got != "" {
		t.Errorf("live regions while queued:\n%s", got)
	}

	offline := newBrowser(t)
	phone(offline)
	offline.open(pageURL(s, "/", "closed", ""))
	offline.clickLauncher()
	offline.waitFor("the offline state", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent.startsWith('Nobody is available'); })()`)
	audit(t, offline, "offline")

	broken := newBrowser(t)
	phone(broken)
	broken.open(pageURL(s, "/", "no-such-skin", ""))
	broken.clickLauncher()
	broken.waitFor("the error text", `(() => { const e = `+widgetRoot+`.querySelector('.e'); return e && !e.hidden && e.textContent.length > 20; })()`)
	audit(t, broken, "error")
	if got := broken.eval(widgetRoot + `.querySelector('.e').getAttribute('role')`); got != "alert" {
		t.Errorf("the launcher's error is not an alert (role %q)", got)
	}
}

func TestAccessibleUnverifiedChoice(t *testing.T) {
	skinKey, otherKey := key(t, "skin"), key(t, "other")
	op := opSpec{user: "mallory", name: "Mal", key: otherKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyOpportunistic, otherKey, op)}, []opSpec{op})
	s.waitAvailable("shop")
	b := newBrowser(t)
	phone(b)
	b.open(pageURL(s, "/", "shop", skinKey.PublicKey.Fingerprint().String()))
	b.clickLauncher()
	b.waitSentence(sentUnverified)
	b.write("held until I say so")
	b.waitFor("the choice offered", `(() => { const c = `+widgetRoot+`.querySelector('button.confirm'); return c && !c.closest('[hidden]'); })()`)
	audit(t, b, "unverified-choice")
	if got := b.eval(liveRegions); got != "" {
		t.Errorf("live regions with the choice offered:\n%s", got)
	}
}

// TestZoomAndReducedMotion: at 200 % zoom (a 1280×768 screen shows a
// 640×384 CSS viewport) everything needed to chat is on screen without
// scrolling sideways, and a visitor who asked for less motion gets none.
func TestZoomAndReducedMotion(t *testing.T) {
	s := shopWithAda(t)
	b := newBrowser(t)
	b.do("200 % zoom of a 1280×768 screen", chromedp.EmulateViewport(640, 384))
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}},
	}); err != nil {
		t.Fatalf("emulating prefers-reduced-motion: %v", err)
	}
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("zoomed in")
	b.waitMessage("Operator read: zoomed in")
	b.screenshot("zoom-200")
	// Each control a visitor needs lies inside the viewport and inside the
	// panel, and the panel does not scroll sideways.
	got := b.eval(`(() => { const r = ` + widgetRoot + `; const out = []; const p = r.querySelector('section');
	  const inside = (e, what) => { if (!e) { out.push(what + ' is missing'); return; } const b = e.getBoundingClientRect(), pb = p.getBoundingClientRect();
	    if (b.width === 0 || b.height === 0) out.push(what + ' has no size');
	    if (b.left < 0 || b.top < 0 || b.right > innerWidth + 0.5 || b.bottom > innerHeight + 0.5) out.push(what + ' is off screen: ' + JSON.stringify(b));
	    if (b.left < pb.left - 0.5 || b.top < pb.top - 0.5 || b.right > pb.right + 0.5 || b.bottom > pb.bottom + 0.5) out.push(what + ' is cut off by the panel'); };
	  inside(r.querySelector('h2'), 'the title'); inside(r.querySelector('.s'), 'the security line');
	  inside(r.querySelector('textarea'), 'the message input'); inside(r.querySelector('button.send'), 'the send button');
	  inside(r.querySelector('button.end'), 'the end button'); inside(r.querySelector('button.min'), 'the minimise button');
	  if (p.scrollWidth > p.clientWidth + 1) out.push('the panel scrolls sideways');
	  if (document.documentElement.scrollWidth > innerWidth + 1) out.push('the page scrolls sideways');
	  return out.join('\n'); })()`)
	if got != "" {
		t.Errorf("at 200 %% zoom:\n%s", got)
	}
	if got := b.eval(`(() => { const r = ` + widgetRoot + `; const p = r.querySelector('section');
	  return getComputedStyle(p).transitionDuration + ' ' + document.getAnimations().length; })()`); got != "0s 0" {
		t.Errorf("with prefers-reduced-motion the panel's transition / running animations = %q, want none", got)
	}
}
