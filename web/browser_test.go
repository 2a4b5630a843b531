package web_test

// Browser tests of the visitor widget: real headless Chromium (Debian
// chromium) driven with chromedp, a private Prosody (internal/xmpptest), the
// real component (component.New/Run), the real HTTP handler (web.New) and
// internal/operator as the operator holding the skin key. The embedding page
// is served from another origin than otrdesk under the strict CSP a site is
// told to use (see sitePages). Screenshots of each state go to t.ArtifactDir() (kept with
// go test -artifacts) or to $OTRDESK_ARTIFACTS/<test> when that is set.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// The widget's three security sentences (web/src/strings.js).
const (
	sentVerified   = "This chat uses end-to-end encryption."
	sentUnverified = "Encrypted, but this operator's key is not the one published for this chat."
	sentPlaintext  = "Not encrypted."
)

const (
	componentDomain = "chat.example.org"
	componentSecret = "browser-test-secret"
	waitLong        = 60 * time.Second // bound for anything the test waits on
)

// ---- assets ----

var (
	buildOnce sync.Once
	buildErr  error
)

// assets returns web/dist, building it first when it is missing or older
// than its sources. It never skips: without node or node_modules it fails
// and names make build.
func assets(t testing.TB) fs.FS {
	t.Helper()
	buildOnce.Do(func() { buildErr = ensureBuilt() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return os.DirFS("dist")
}

func ensureBuilt() error {
	out, err := os.Stat(filepath.Join("dist", "widget.js"))
	stale := err != nil
	if !stale {
		for _, dir := range []string{"src", "wasm", filepath.Join("..", "otr")} {
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if info, err := d.Info(); err == nil && info.ModTime().After(out.ModTime()) {
						stale = true
					}
				}
				return nil
			})
		}
		if info, err := os.Stat("build.mjs"); err == nil && info.ModTime().After(out.ModTime()) {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("widget assets are not built and node is missing (Debian package nodejs): run make build")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "esbuild")); err != nil {
		return errors.New("widget assets are not built and web/node_modules is missing: run make build")
	}
	cmd := exec.Command(node, "build.mjs")
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building the widget (node build.mjs) failed: %v\n%s\nrun make build to see why", err, b)
	}
	return nil
}

// ---- the stack ----

type opSpec struct {
	user  string
	name  string // display name in the skin
	key   *otr.PrivateKey
	omemo int // OMEMO devices of the operator's account (0: OTR only)
}

type stack struct {
	t         testing.TB
	ctx       context.Context
	srv       *xmpptest.Server
	st        *store.Store
	comp      *component.Component
	widgetURL string // otrdesk's origin, http://127.0.0.1:P
	pageURL   string // the embedding site, http://localhost:Q
	bots      map[string]*operator.Bot
	clients   map[string]*xmpptest.Client // the operators' c2s connections
}

var (
	keyMu    sync.Mutex
	keyCache = map[string]*otr.PrivateKey{}
)

// key returns a DSA key for a name, made once per test binary (keygen costs
// fresh parameters).
func key(t testing.TB, name string) *otr.PrivateKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k := keyCache[name]; k != nil {
		return k
	}
	k, err := otr.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("generating an OTR key: %v", err)
	}
	keyCache[name] = k
	return k
}

func skinWithKey(name string, policy store.Policy, k *otr.PrivateKey, ops ...opSpec) store.Skin {
	sk := store.Skin{
		Name: name, Title: "Help desk " + name, Greeting: "Hello! How can we help?", Color: "#7a1f5c",
		Policy: policy, OperatorNames: map[string]string{},
	}
	for _, o := range ops {
		j := o.user + "@" + xmpptest.Domain
		sk.Operators = append(sk.Operators, j)
		if o.name != "" {
			sk.OperatorNames[j] = o.name
		}
	}
	if k != nil {
		sk.Keys = []store.SkinKey{{Fingerprint: k.PublicKey.Fingerprint(), PublicKey: k.PublicKey.Bytes(), Created: time.Now()}}
	}
	return sk
}

func newStack(t testing.TB, skins []store.Skin, ops []opSpec, tune ...func(*component.Config)) *stack {
	t.Helper()
	dist := assets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	s := &stack{t: t, ctx: ctx, bots: map[string]*operator.Bot{}, clients: map[string]*xmpptest.Client{}}
	// PEP on the operators' host: OMEMO operators (Go bots, Profanity)
	// publish their keys there.
	s.srv = xmpptest.Prosody(t, xmpptest.Options{
		Components:  map[string]string{componentDomain: componentSecret},
		HostModules: []string{"pep"},
	})

	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	s.st = st
	for _, sk := range skins {
		if err := st.CreateSkin(sk); err != nil {
			t.Fatalf("creating skin %s: %v", sk.Name, err)
		}
	}
	// Operators exist before the component starts: it asks each one for a
	// presence subscription then, and the server drops requests to
	// accounts that do not exist.
	for _, sk := range skins {
		for _, j := range sk.Operators {
			user := strings.TrimSuffix(j, "@"+xmpptest.Domain)
			if _, err := s.srv.Register(ctx, user, "pw-"+user); err != nil {
				t.Fatalf("registering %s: %v", user, err)
			}
		}
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := component.Config{
		Domain: componentDomain, Server: s.srv.ComponentAddr, Secret: componentSecret,
		AnonymousDomain: xmpptest.AnonDomain, Logger: logger,
	}
	for _, f := range tune {
		f(&cfg)
	}
	comp, err := component.New(cfg, st)
	if err != nil {
		t.Fatalf("component.New: %v", err)
	}
	s.comp = comp
	compCtx, stopComp := context.WithCancel(context.Background())
	compDone := make(chan error, 1)
	go func() { compDone <- comp.Run(compCtx) }()
	t.Cleanup(func() {
		stopComp()
		<-compDone
	})
	s.poll("the component to be ready", func() bool { ok, _ := comp.Ready(); return ok })

	// otrdesk's HTTP side on 127.0.0.1, the embedding site on localhost:
	// two origins, as on a real website.
	wl := listen(t)
	s.widgetURL = "http://" + wl.Addr().String()
	h := web.New(web.Config{
		PublicURL: s.widgetURL, BOSHURL: s.srv.BOSHURL, AnonymousDomain: xmpptest.AnonDomain,
		ComponentDomain: componentDomain, Store: st, Component: comp, Logger: logger, Assets: dist,
	})
	serve(t, wl, h)
	pl := listen(t)
	s.pageURL = "http://localhost:" + portOf(pl.Addr())
	serve(t, pl, s.sitePages())

	for _, o := range ops {
		s.startOperator(o)
	}
	return s
}

func (s *stack) startOperator(o opSpec) *operator.Bot {
	t := s.t
	t.Helper()
	c, err := s.srv.Dial(s.ctx, o.user, "pw-"+o.user, "desk")
	if err != nil {
		t.Fatalf("logging in %s: %v", o.user, err)
	}
	t.Cleanup(func() { c.Close() })
	s.clients[o.user] = c
	bot, err := operator.New(operator.Config{
		Client: c, Key: o.key, Service: componentDomain,
		Answer:       func(alias, text string) string { return "Operator read: " + text },
		Logf:         t.Logf,
		OMEMODevices: o.omemo,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bot.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Logf("operator %s: %v", o.user, err)
		}
	})
	s.bots[o.user] = bot
	return bot
}

// poll waits for cond with a bounded deadline (no sleeps as waits).
func (s *stack) poll(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("waiting for %s: %v", what, s.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *stack) waitAvailable(skin string) {
	s.t.Helper()
	s.poll("an operator of "+skin+" to be available", func() bool { return s.comp.Available(skin) })
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	return l
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func serve(t testing.TB, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// sitePages is the embedding website: / puts the script tag in the page
// DOM, /shadow adds it inside an open shadow root from a script of the
// site. Both send the strict CSP a site embedding the widget is told to use (plus 'self' for the site's own
// script on /shadow).
func (s *stack) sitePages() http.Handler {
	bosh := s.srv.BOSHURL
	if i := strings.Index(bosh[len("http://"):], "/"); i >= 0 {
		bosh = bosh[:len("http://")+i]
	}
	csp := func(self bool) string {
		src := s.widgetURL
		if self {
			src = "'self' " + src
		}
		return fmt.Sprintf("default-src 'none'; script-src %s 'wasm-unsafe-eval'; worker-src blob:; connect-src %s %s; style-src 'self'; base-uri 'none'",
			src, s.widgetURL, bosh)
	}
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request, body string, self bool) {
		w.Header().Set("Content-Security-Policy", csp(self))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Example shop</title></head>
<body><h1>Example shop</h1><p><a id="other" href="/other?%s">Another page of the shop</a></p>%s</body></html>`,
			html.EscapeString(r.URL.RawQuery), body)
	}
	tag := func(r *http.Request) string {
		q := r.URL.Query()
		t := `<script async src="` + s.widgetURL + `/widget.js" data-skin="` + html.EscapeString(q.Get("skin")) + `"`
		if pin := q.Get("pin"); pin != "" {
			t += ` data-fingerprint="` + html.EscapeString(pin) + `"`
		}
		return t + `></script>`
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { page(w, r, tag(r), false) })
	mux.HandleFunc("GET /other", func(w http.ResponseWriter, r *http.Request) { page(w, r, tag(r), false) })
	mux.HandleFunc("GET /shadow", func(w http.ResponseWriter, r *http.Request) {
		page(w, r, `<div id="app"></div><script src="/shadow.js?`+html.EscapeString(r.URL.RawQuery)+`"></script>`, true)
	})
	mux.HandleFunc("GET /shadow.js", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprintf(w, `const root = document.getElementById('app').attachShadow({mode: 'open'});
const s = document.createElement('script');
s.src = %q; s.dataset.skin = %q; %s
root.append(s);`, s.widgetURL+"/widget.js", q.Get("skin"), pinJS(q.Get("pin")))
	})
	return mux
}

func pinJS(pin string) string {
	if pin == "" {
		return ""
	}
	b, _ := json.Marshal(pin)
	return "s.dataset.fingerprint = " + string(b) + ";"
}

// ---- the browser ----

type browser struct {
	t    testing.TB
	ctx  context.Context
	dir  string // screenshots
	shot int

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

func chromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: install the Debian package chromium (apt-get install chromium)")
	return ""
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
	})
	b := &browser{t: t, ctx: ctx, dir: artifactDir(t)}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	return b
}

func artifactDir(t testing.TB) string {
	if d := os.Getenv("OTRDESK_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(dir, 0o755); err == nil {
			return dir
		}
	}
	return t.ArtifactDir()
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.failf("%s: %v", what, err)
	}
}

// failf fails the test with what the page logged, which is what a person
// would look at first.
func (b *browser) failf(format string, args ...any) {
	b.t.Helper()
	b.screenshot("failure")
	b.mu.Lock()
	var lines []string
	for _, m := range b.console {
		lines = append(lines, m.String())
	}
	b.mu.Unlock()
	b.t.Fatalf(format+"\nbrowser console:\n%s", append(args, strings.Join(lines, "\n"))...)
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shot++
	p := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("saving screenshot: %v", err)
		return
	}
	b.t.Logf("screenshot: %s", p)
}

// cspViolations returns the console lines about the Content-Security-Policy.
func (b *browser) cspViolations() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		if strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy") {
			out = append(out, m.Text)
		}
	}
	return out
}

// widgetRoot is a JS expression for the widget's shadow root, wherever the
// page put the widget (page DOM or inside the site's own shadow root).
const widgetRoot = `(() => { const roots = [document];
  for (let i = 0; i < roots.length; i++) {
    const h = roots[i].querySelector('[data-otrdesk]'); if (h) return h.shadowRoot;
    for (const e of roots[i].querySelectorAll('*')) if (e.shadowRoot) roots.push(e.shadowRoot);
  } return null; })()`

func inWidget(sel string) chromedp.JSPath {
	return chromedp.JSPath(widgetRoot + ".querySelector(" + jsString(sel) + ")")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// pageText is every text and attribute value of the page, shadow roots
// included: what "anywhere in the page DOM" means.
const pageText = `(() => { const out = []; const walk = (n) => {
  if (n.nodeType === 3) out.push(n.data);
  if (n.nodeType === 1) { for (const a of n.attributes) out.push(a.value); if (n.shadowRoot) walk(n.shadowRoot); }
  for (const c of n.childNodes) walk(c); };
  walk(document.documentElement); return out.join('\n'); })()`

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.failf("evaluating %.60q: %v", expr, err)
	}
	return v
}

// waitFor waits until the JS expression is true.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingInterval(20*time.Millisecond)))
		if err == nil {
			return
		}
		// The page's JavaScript context was replaced under the poll (a
		// navigation finishing): poll again in the new one.
		if strings.Contains(err.Error(), "Cannot find context with specified id") && ctx.Err() == nil {
			continue
		}
		b.failf("waiting for %s: %v", what, err)
	}
}

func (b *browser) securityText() string {
	return b.eval(`(() => { const r = ` + widgetRoot + `; const s = r && r.querySelector('.s'); return s ? s.textContent : ''; })()`)
}

func (b *browser) waitSentence(want string) {
	b.t.Helper()
	b.waitFor("the sentence "+want, `(() => { const r = `+widgetRoot+`; const s = r && r.querySelector('.s'); return s && s.textContent === `+jsString(want)+`; })()`)
}

// waitHeldWithChoice waits until the visitor's message holding text is
// held and the choice to write to an unverified operator is offered.
func (b *browser) waitHeldWithChoice(text string) {
	b.t.Helper()
	b.waitFor("the message held, and the choice offered", `(() => { const r = `+widgetRoot+`;
	  const li = [...r.querySelectorAll('.m li.me')].find((li) => li.textContent.includes(`+jsString(text)+`));
	  const c = r.querySelector('button.confirm');
	  return li && li.dataset.state === 'held' && c && !c.closest('[hidden]') && c.textContent === 'Send to an unverified operator'; })()`)
}

func (b *browser) waitMessage(text string) {
	b.t.Helper()
	b.waitFor("the message "+text+" in the chat", `(() => { const r = `+widgetRoot+`; return r && [...r.querySelectorAll('.m li.them')].some((li) => li.textContent.includes(`+jsString(text)+`)); })()`)
}

func (b *browser) open(url string) {
	b.t.Helper()
	b.do("opening "+url, chromedp.Navigate(url))
	b.waitFor("the launcher", widgetRoot+` && `+widgetRoot+`.querySelector('button.b')`)
}

func (b *browser) clickLauncher() {
	b.t.Helper()
	b.do("clicking the launcher", chromedp.Click(inWidget("button.b")))
}

func (b *browser) write(text string) {
	b.t.Helper()
	b.do("writing a message", chromedp.SendKeys(inWidget("textarea"), text), chromedp.KeyEvent(kb.Enter))
}

// ---- tests ----

func pageURL(s *stack, path, skin, pin string) string {
	u := s.pageURL + path + "?skin=" + skin
	if pin != "" {
		u += "&pin=" + strings.ReplaceAll(pin, " ", "+")
	}
	return u
}

func nextMessage(t *testing.T, ctx context.Context, bot *operator.Bot, text string) operator.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLong)
	defer cancel()
	ev, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message && e.Text == text })
	if err != nil {
		t.Fatalf("operator waiting for %q: %v", text, err)
	}
	if !ev.Encrypted {
		t.Fatalf("operator read %q unencrypted", text)
	}
	return ev
}

func TestVerifiedChatBothWays(t *testing.T) {
	s := shopWithAda(t)
	bot := s.bots["ada"]
	b := newBrowser(t)

	b.open(pageURL(s, "/", "shop", ""))
	if n := b.eval(`String(document.querySelectorAll('script').length)`); n != "1" {
		t.Errorf("before the click the page has %s script elements, want only the launcher", n)
	}
	b.screenshot("launcher")
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.screenshot("verified")
	if got := b.eval(`(() => { const r = ` + widgetRoot + `; return r.querySelector('.q').textContent; })()`); !strings.Contains(got, "Ada") {
		t.Errorf("status line %q does not name the operator Ada", got)
	}

	// Skin title, greeting and colour; ARIA roles a screen reader relies on.
	if got := b.eval(`(() => { const r = ` + widgetRoot + `; return [r.querySelector('h2').textContent,
	    [...r.querySelectorAll('.m li.greet q')].map((q) => q.textContent).join('|'),
	    getComputedStyle(r.querySelector('.h')).backgroundColor,
	    r.querySelector('.s').getAttribute('role'), r.querySelector('.m').getAttribute('role'),
	    r.querySelector('section').getAttribute('role')].join(' / '); })()`); !strings.HasPrefix(got, "Help desk shop / Hello! How can we help?") ||
		!strings.Contains(got, "rgb(122, 31, 92) / status / log / dialog") {
		t.Errorf("title / greeting / colour / roles = %q", got)
	}

	b.write("Hello from the browser")
	ev := nextMessage(t, s.ctx, bot, "Hello from the browser")
	b.waitMessage("Operator read: Hello from the browser")
	if err := bot.Say(s.ctx, ev.Alias, "Hello from the operator"); err != nil {
		t.Fatal(err)
	}
	b.waitMessage("Hello from the operator")

	// Typing both ways (XEP-0085).
	b.do("typing", chromedp.SendKeys(inWidget("textarea"), "typ"))
	if _, err := bot.Next(s.ctx, func(e operator.Event) bool { return e.Kind == operator.Typing && e.Text == "composing" }); err != nil {
		t.Fatalf("the operator saw no composing state: %v", err)
	}
	if err := bot.Typing(s.ctx, ev.Alias, "composing"); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the typing indicator", `[...`+widgetRoot+`.querySelectorAll('.q')].some((p) => p.textContent === 'Ada is typing…')`)
	b.screenshot("messages-and-typing")
	b.eval(`(() => { ` + widgetRoot + `.querySelector('textarea').value = ''; return ''; })()`)

	// The transcript is made in the browser and downloaded from there.
	dl := filepath.Join(t.TempDir(), "downloads")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl,
	}); err != nil {
		t.Fatalf("allowing downloads: %v", err)
	}
	b.do("downloading the transcript", chromedp.Click(inWidget("button.transcript")))
	var transcript []byte
	s.poll("the transcript file", func() bool {
		files, _ := filepath.Glob(filepath.Join(dl, "chat-shop-*.txt"))
		if len(files) == 1 {
			transcript, _ = os.ReadFile(files[0])
		}
		return strings.Contains(string(transcript), "Hello from the operator")
	})
	for _, want := range []string{"You: Hello from the browser", "Ada: Operator read: Hello from the browser", "Ada: Hello from the operator"} {
		if !strings.Contains(string(transcript), want) {
			t.Errorf("the transcript lacks %q:\n%s", want, transcript)
		}
	}
	if v := b.cspViolations(); len(v) > 0 {
		t.Errorf("CSP violations:\n%s", strings.Join(v, "\n"))
	}

	// The operator closes the encrypted session: the widget stops claiming
	// encryption, holds the next message and runs a new AKE for it.
	if err := bot.End(s.ctx, ev.Alias); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the closed-encryption notice", `[...`+widgetRoot+`.querySelectorAll('.m li.note')].some((li) => li.textContent.startsWith('The operator closed the encrypted session.'))`)
	if got := b.securityText(); got == sentVerified {
		t.Errorf("after the operator ended OTR the widget still says %q", got)
	}
	b.write("after a new AKE")
	b.waitSentence(sentVerified)
	nextMessage(t, s.ctx, bot, "after a new AKE")

	// Ending the chat sends an OTR disconnect and <end/>.
	b.do("ending the chat", chromedp.Click(inWidget("button.end")))
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	if _, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Insecure }); err != nil {
		t.Fatalf("the operator saw no OTR disconnect: %v", err)
	}
	// <end xmlns='urn:otrdesk:0'/> made the component end the chat.
	if _, err := bot.Next(ctx, func(e operator.Event) bool {
		return e.Kind == operator.Notice && strings.Contains(e.Text, "the visitor ended the chat")
	}); err != nil {
		t.Fatalf("the component did not end the chat: %v", err)
	}
	b.waitFor("the ended state", widgetRoot+`.querySelector('textarea').disabled`)
	b.screenshot("ended")
}

func TestReloadContinuesChat(t *testing.T) {
	s := shopWithAda(t)
	bot := s.bots["ada"]
	b := newBrowser(t)

	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("before the reload")
	first := nextMessage(t, s.ctx, bot, "before the reload")

	b.do("reloading", chromedp.Reload())
	b.waitSentence(sentVerified)
	b.waitFor("the transcript after the reload", `[...`+widgetRoot+`.querySelectorAll('.m li.me')].some((li) => li.textContent.includes('before the reload'))`)
	b.screenshot("after-reload")
	b.write("after the reload")
	second := nextMessage(t, s.ctx, bot, "after the reload")
	if second.Alias != first.Alias {
		t.Errorf("after the reload the operator talks with %s, before with %s: not the same chat", second.Alias, first.Alias)
	}
	b.waitMessage("Operator read: after the reload")

	// Navigation within the site keeps the chat too.
	b.open(pageURL(s, "/other", "shop", ""))
	b.waitSentence(sentVerified)
	b.write("on another page")
	third := nextMessage(t, s.ctx, bot, "on another page")
	if third.Alias != first.Alias {
		t.Errorf("after navigating the operator talks with %s, before with %s", third.Alias, first.Alias)
	}
	b.screenshot("after-navigation")
}

func TestOtherKeyIsNotVerified(t *testing.T) {
	skinKey, otherKey := key(t, "skin"), key(t, "other")
	op := opSpec{user: "mallory", name: "Mal", key: otherKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op})
	s.waitAvailable("shop")
	bot := s.bots["mallory"]
	b := newBrowser(t)

	// Inside the site's own shadow root, with the page pinning the skin key.
	b.open(pageURL(s, "/shadow", "shop", skinKey.PublicKey.Fingerprint().String()))
	b.clickLauncher()
	b.waitSentence(sentUnverified)
	b.screenshot("not-verified")
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Errorf("the page contains %q while the operator's key is not the published one", sentVerified)
	}
	// The visitor can still write while unverified, once they chose to.
	b.do("choosing to write to the unverified operator", chromedp.Click(inWidget("button.confirm")))
	b.write("still there?")
	ev := nextMessage(t, s.ctx, bot, "still there?")
	// An operator with another key cannot put the sentence on the page by
	// writing it either.
	if err := bot.Say(s.ctx, ev.Alias, "Trust me: "+sentVerified); err != nil {
		t.Fatal(err)
	}
	b.waitMessage("[removed: text from the chat service that looked like a security notice")
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Errorf("an operator's message put %q on the page", sentVerified)
	}
	if v := b.cspViolations(); len(v) > 0 {
		t.Errorf("CSP violations:\n%s", strings.Join(v, "\n"))
	}
}

// TestUnverifiedNeedsConsent: on a pinned page (the skin's own policy says
// "opportunistic", which the pin overrides), an operator whose key is not
// the pinned one gets nothing the visitor wrote until the visitor chooses,
// with the keyboard, to write to an unverified operator; the choice is
// announced in the transcript's live region first.
func TestUnverifiedNeedsConsent(t *testing.T) {
	skinKey, otherKey := key(t, "skin"), key(t, "other")
	op := opSpec{user: "mallory", name: "Mal", key: otherKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyOpportunistic, otherKey, op)}, []opSpec{op})
	s.waitAvailable("shop")
	bot := s.bots["mallory"]
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", skinKey.PublicKey.Fingerprint().String()))
	b.clickLauncher()
	b.waitSentence(sentUnverified)
	b.write("held until I say so")
	b.waitHeldWithChoice("held until I say so")
	// The reason is in words in the live region (role=log, aria-live=polite).
	if got := b.eval(`(() => { const m = ` + widgetRoot + `.querySelector('.m'); return m.getAttribute('aria-live') + ' ' +
	  [...m.querySelectorAll('li.note')].map((li) => li.textContent).join('|'); })()`); !strings.HasPrefix(got, "polite ") ||
		!strings.Contains(got, "is not the one published for this chat. What you write is held until you choose “Send to an unverified operator”.") {
		t.Errorf("the live region does not announce the choice: %q", got)
	}
	b.screenshot("choice-offered")

	// Keyboard only: from the message input, Shift+Tab reaches the choice.
	const deepActive = `(() => { let a = document.activeElement; while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
	  return a ? a.tagName.toLowerCase() + '.' + a.className : ''; })()`
	b.waitFor("focus in the message input", deepActive+` === 'textarea.'`)
	reached := false
	for i := 0; i < 5 && !reached; i++ {
		b.do("pressing Shift+Tab", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
		reached = b.eval(deepActive) == "button.confirm"
	}
	if !reached {
		b.failf("Shift+Tab from the input never reached the choice (focus is on %q)", b.eval(deepActive))
	}
	b.do("choosing with Enter", chromedp.KeyEvent(kb.Enter))
	first := nextMessage(t, s.ctx, bot, "held until I say so")
	b.waitFor("the message marked sent and the choice gone", `(() => { const r = `+widgetRoot+`;
	  const li = [...r.querySelectorAll('.m li.me')].find((li) => li.textContent.includes('held until I say so'));
	  return li && (li.dataset.state === 'sent' || li.dataset.state === 'delivered') && r.querySelector('.c').hidden; })()`)
	if got := b.securityText(); got != sentUnverified {
		t.Errorf("after the choice the line says %q, want %q", got, sentUnverified)
	}
	// After the choice, what the visitor writes goes at once.
	b.write("and this one")
	if second := nextMessage(t, s.ctx, bot, "and this one"); second.Alias != first.Alias {
		t.Errorf("the second message went to %s, the first to %s", second.Alias, first.Alias)
	}
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Errorf("the page contains %q with an unverified operator", sentVerified)
	}
	b.screenshot("after-choice")
}

// TestLibotrOperator puts real libotr 4.1.1 (the library Pidgin uses, run
// through internal/libotrtest's C helper) behind the operator account: the
// browser's wasm engine completes the AKE with it and messages flow both
// ways. The test goroutine drives libotr between its checks.
func TestLibotrOperator(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{Account: "ada@" + xmpptest.Domain, PeerName: "visitor@" + componentDomain})
	sk := skinWithKey("shop", store.PolicyRequire, nil, opSpec{user: "ada", name: "Ada"})
	sk.Keys = []store.SkinKey{{Fingerprint: otr.Fingerprint(peer.Fingerprint()), Created: time.Now()}}
	s := newStack(t, []store.Skin{sk}, nil)
	op := newLibotrOperator(t, s, "ada", peer)
	op.pump("the operator to be available", func() bool { return s.comp.Available("shop") })

	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	op.pump("libotr to go secure", func() bool { return op.secure })
	b.waitSentence(sentVerified)
	b.write("hello libotr")
	op.pump("libotr to read the visitor", func() bool { return slices.Contains(op.shown, "hello libotr") })
	r := peer.Send([]byte("libotr answers"))
	if len(r.Out) == 0 || !strings.HasPrefix(string(r.Out[0]), "?OTR:") {
		t.Fatalf("libotr did not encrypt its answer: %q", r.Out)
	}
	for _, out := range r.Out {
		if err := op.c.Message(s.ctx, op.alias, string(out)); err != nil {
			t.Fatal(err)
		}
	}
	b.waitMessage("libotr answers")
	b.screenshot("libotr-operator")
}

// dialOperator logs an operator account in as a client does (roster,
// presence) and puts it on duty with the command bot.
func dialOperator(t testing.TB, s *stack, user string) *xmpptest.Client {
	t.Helper()
	c, err := s.srv.Dial(s.ctx, user, "pw-"+user, "pidgin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.IQ(s.ctx, "get", "", "<query xmlns='jabber:iq:roster'/>"); err != nil {
		t.Fatal(err)
	}
	if err := c.Presence(s.ctx, "", 1); err != nil {
		t.Fatal(err)
	}
	if err := c.Message(s.ctx, componentDomain, "on"); err != nil {
		t.Fatal(err)
	}
	return c
}

// libotrOperator is real libotr 4.1.1 (the library Pidgin uses, run through
// internal/libotrtest's C helper) behind an operator account. The test
// goroutine drives it with pump between its checks.
type libotrOperator struct {
	t      testing.TB
	s      *stack
	c      *xmpptest.Client
	peer   *libotrtest.Peer
	alias  string   // the visitor's alias, once a visitor wrote
	secure bool     // libotr finished an AKE
	shown  []string // what libotr decrypted, in order
}

func newLibotrOperator(t testing.TB, s *stack, user string, peer *libotrtest.Peer) *libotrOperator {
	t.Helper()
	return &libotrOperator{t: t, s: s, c: dialOperator(t, s, user), peer: peer}
}

// pump runs the operator until cond holds: it approves the skin's
// subscription, feeds every body from a visitor alias to libotr and sends
// what libotr answers.
func (o *libotrOperator) pump(what string, cond func() bool) {
	t, s, c := o.t, o.s, o.c
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		ctx, cancel := context.WithTimeout(s.ctx, 50*time.Millisecond)
		st, err := c.Next(ctx, nil)
		cancel()
		if err != nil {
			if s.ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			continue
		}
		switch {
		case st.Name == "presence" && st.Type == "subscribe":
			if err := c.Subscribed(s.ctx, st.From); err != nil {
				t.Fatal(err)
			}
			if err := c.Presence(s.ctx, "", 1); err != nil {
				t.Fatal(err)
			}
		case st.Name == "message" && st.HasBody && strings.HasPrefix(st.From, "guest-"):
			o.alias = strings.SplitN(st.From, "/", 2)[0]
			r := o.peer.Receive([]byte(st.Body))
			for _, out := range r.Out {
				if err := c.Message(s.ctx, o.alias, string(out)); err != nil {
					t.Fatal(err)
				}
			}
			o.secure = o.secure || r.Has("secure")
			for _, m := range r.Shown {
				o.shown = append(o.shown, string(m.Text))
			}
		}
	}
}

func TestQueuedThenAssigned(t *testing.T) {
	skinKey := key(t, "skin")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op},
		func(c *component.Config) { c.MaxChatsPerOperator = 1 })
	s.waitAvailable("shop")
	first := newBrowser(t)
	first.open(pageURL(s, "/", "shop", ""))
	first.clickLauncher()
	first.waitSentence(sentVerified)

	second := newBrowser(t)
	second.open(pageURL(s, "/", "shop", ""))
	second.clickLauncher()
	second.waitFor("the queue position", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent === 'Waiting for an operator. You are number 1 in the queue.'; })()`)
	if got := second.securityText(); got == sentVerified || got == sentUnverified {
		t.Errorf("a queued visitor sees %q before any operator answered", got)
	}
	second.screenshot("queued")

	first.do("ending the first chat", chromedp.Click(inWidget("button.end")))
	second.waitSentence(sentVerified)
	second.waitFor("the operator's name", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent === 'You are chatting with Ada.'; })()`)
	second.write("my turn")
	nextMessage(t, s.ctx, s.bots["ada"], "my turn")
	second.screenshot("assigned-after-queue")
}

func TestPinnedFingerprintWins(t *testing.T) {
	// The operator holds the skin key, but the page pins another
	// fingerprint: the page is the trust anchor.
	skinKey, otherKey := key(t, "skin"), key(t, "other")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op})
	s.waitAvailable("shop")
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", otherKey.PublicKey.Fingerprint().String()))
	b.clickLauncher()
	b.waitSentence(sentUnverified)
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Errorf("the page contains %q although the pinned fingerprint differs", sentVerified)
	}
}

func TestTransferRekeys(t *testing.T) {
	skinKey := key(t, "skin")
	ada := opSpec{user: "ada", name: "Ada", key: skinKey}
	bob := opSpec{user: "bob", name: "Bob", key: skinKey}
	// Both on duty from the start; the first chat goes to Ada (equal load
	// and priority: the component picks the lowest full JID).
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, ada, bob)}, []opSpec{ada, bob})
	bobBot := s.bots["bob"]
	for _, name := range []string{"ada", "bob"} {
		ctx, cancel := context.WithTimeout(s.ctx, waitLong)
		if _, err := s.bots[name].Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Service }); err != nil {
			t.Fatalf("%s got no answer to \"on\": %v", name, err)
		}
		cancel()
	}
	s.waitAvailable("shop")
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("first operator")
	ev := nextMessage(t, s.ctx, s.bots["ada"], "first operator")

	if err := s.bots["ada"].Command(s.ctx, "transfer "+strings.TrimSuffix(ev.Alias, "@"+componentDomain)+" bob@"+xmpptest.Domain); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	sec, err := bobBot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure })
	if err != nil {
		reply, _ := s.bots["ada"].Next(s.ctx, func(e operator.Event) bool { return e.Kind == operator.Service })
		t.Fatalf("no fresh AKE with the new operator after the transfer (component said %q): %v", reply.Text, err)
	}
	if sec.Fingerprint == (otr.Fingerprint{}) {
		t.Error("the new operator's AKE reported no fingerprint")
	}
	b.waitSentence(sentVerified)
	b.waitFor("the new operator's name", `(() => { const r = `+widgetRoot+`; const q = r && r.querySelector('.q'); return q && q.textContent.includes('Bob'); })()`)
	b.write("second operator")
	nextMessage(t, s.ctx, bobBot, "second operator")
	b.waitMessage("Operator read: second operator")
	b.screenshot("transferred")
}

func TestReconnectAfterNetworkDrop(t *testing.T) {
	s := shopWithAda(t)
	bot := s.bots["ada"]
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("before the drop")
	nextMessage(t, s.ctx, bot, "before the drop")

	b.network(false)
	b.waitFor("the reconnecting state", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent === 'Connection lost. Reconnecting…'; })()`)
	b.screenshot("network-down")
	b.network(true)
	// A new login takes the same chat back (resilience_browser_test.go tests it in full).
	b.waitFor("the same chat after the reconnect", `[...`+widgetRoot+`.querySelectorAll('.m li.note')].some((li) => li.textContent.startsWith('Reconnected to the same chat'))`)
	b.waitSentence(sentVerified)
	b.write("after the drop")
	nextMessage(t, s.ctx, bot, "after the drop")
	b.waitMessage("Operator read: after the drop")
	b.screenshot("reconnected")
}

// network turns the browser's network on or off (DevTools offline mode).
func (b *browser) network(up bool) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLong)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		b.failf("enabling the network domain: %v", err)
	}
	cond := &network.Conditions{Offline: !up, DownloadThroughput: -1, UploadThroughput: -1}
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{cond},
	}); err != nil {
		b.failf("switching the network (up=%v): %v", up, err)
	}
}

func TestOperatorLostRequeues(t *testing.T) {
	skinKey := key(t, "skin")
	ada := opSpec{user: "ada", name: "Ada", key: skinKey}
	bob := opSpec{user: "bob", name: "Bob", key: skinKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, ada, bob)}, []opSpec{ada, bob})
	for _, name := range []string{"ada", "bob"} {
		ctx, cancel := context.WithTimeout(s.ctx, waitLong)
		if _, err := s.bots[name].Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Service }); err != nil {
			t.Fatalf("%s got no answer to \"on\": %v", name, err)
		}
		cancel()
	}
	s.waitAvailable("shop")
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	b.write("hello Ada")
	nextMessage(t, s.ctx, s.bots["ada"], "hello Ada")

	// Ada's client drops off: the chat goes back to the queue, Bob takes it
	// and the widget runs a new AKE with him.
	s.clients["ada"].Close()
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	if _, err := s.bots["bob"].Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure }); err != nil {
		b.failf("no new AKE with Bob after Ada left: %v", err)
	}
	b.waitSentence(sentVerified)
	b.waitFor("Bob's name", `(() => { const q = `+widgetRoot+`.querySelector('.q'); return q && q.textContent === 'You are chatting with Bob.'; })()`)
	b.write("hello Bob")
	nextMessage(t, s.ctx, s.bots["bob"], "hello Bob")
	b.screenshot("requeued-to-bob")
}

func TestKeyboardOnly(t *testing.T) {
	s := shopWithAda(t)
	b := newBrowser(t)
	b.open(pageURL(s, "/", "shop", ""))

	// deepActive names the focused element, looking into shadow roots.
	const deepActive = `(() => { let a = document.activeElement; while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
	  return a ? a.tagName.toLowerCase() + '.' + a.className : ''; })()`
	reached := false
	for i := 0; i < 10 && !reached; i++ {
		b.do("pressing Tab", chromedp.KeyEvent(kb.Tab))
		reached = b.eval(deepActive) == "button.b"
	}
	if !reached {
		b.failf("Tab never reached the launcher button (focus is on %q)", b.eval(deepActive))
	}
	b.do("pressing Enter on the launcher", chromedp.KeyEvent(kb.Enter))
	b.waitFor("focus in the message input", deepActive+` === 'textarea.'`)
	b.waitSentence(sentVerified)
	b.do("typing", chromedp.KeyEvent("typed with keys only"))
	b.do("tabbing to Send", chromedp.KeyEvent(kb.Tab))
	if got := b.eval(deepActive); got != "button.send" {
		b.failf("Tab from the input reached %q, want the send button", got)
	}
	b.screenshot("keyboard-send-focused")
	b.do("pressing Enter on Send", chromedp.KeyEvent(kb.Enter))
	nextMessage(t, s.ctx, s.bots["ada"], "typed with keys only")
	b.do("pressing Escape", chromedp.KeyEvent(kb.Escape))
	b.waitFor("the panel to close and focus to return", deepActive+` === 'button.b'`)
}

func TestPlaintextSkinAndOffline(t *testing.T) {
	skinKey := key(t, "skin")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	nobody := skinWithKey("closed", store.PolicyRequire, skinKey, opSpec{user: "ghost"})
	s := newStack(t, []store.Skin{skinWithKey("open", store.PolicyPlaintext, nil, op), nobody}, []opSpec{op})
	s.waitAvailable("open")
	b := newBrowser(t)

	b.open(pageURL(s, "/", "open", ""))
	b.clickLauncher()
	b.waitSentence(sentPlaintext)
	b.write("plain hello")
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	if _, err := s.bots["ada"].Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Notice && e.Text == "plain hello" }); err != nil {
		b.failf("the operator did not get the plaintext message: %v", err)
	}
	b.screenshot("plaintext")

	b2 := newBrowser(t)
	b2.open(pageURL(s, "/", "closed", ""))
	b2.clickLauncher()
	b2.waitFor("the offline state", `(() => { const r = `+widgetRoot+`; const q = r && r.querySelector('.q'); return q && q.textContent.startsWith('Nobody is available'); })()`)
	b2.screenshot("offline")
}

func TestMobileLayoutAndErrors(t *testing.T) {
	s := shopWithAda(t)
	b := newBrowser(t)
	b.do("a phone-sized viewport", chromedp.EmulateViewport(375, 667, chromedp.EmulateScale(2)))
	b.open(pageURL(s, "/", "shop", ""))
	b.clickLauncher()
	b.waitSentence(sentVerified)
	got := b.eval(`(() => { const r = ` + widgetRoot + `; const p = r.querySelector('section').getBoundingClientRect();
	  return [parseFloat(getComputedStyle(r.querySelector('textarea')).fontSize), Math.round(p.width), Math.round(p.height)].join(' '); })()`)
	var font float64
	var w, h int
	if _, err := fmt.Sscanf(got, "%g %d %d", &font, &w, &h); err != nil {
		t.Fatalf("reading the layout %q: %v", got, err)
	}
	if font < 16 {
		t.Errorf("the message input's font is %vpx on a phone; below 16px mobile browsers zoom in", font)
	}
	if w != 375 || h != 667 {
		t.Errorf("on a 375x667 phone the panel is %dx%d, want the whole screen", w, h)
	}
	b.screenshot("mobile")

	// A skin that does not exist: an error in words, not a dead box.
	b2 := newBrowser(t)
	b2.open(pageURL(s, "/", "no-such-skin", ""))
	b2.clickLauncher()
	// (Which sentence depends on whether the 404 carries CORS headers: with
	// them the widget says the chat does not exist, without them it can
	// only say the service cannot be reached.)
	b2.waitFor("the error text", `(() => { const e = `+widgetRoot+`.querySelector('.e'); return e && !e.hidden && e.textContent.length > 20; })()`)
	t.Logf("unknown skin: the widget says %q", b2.eval(widgetRoot+`.querySelector('.e').textContent`))
	if got := b2.eval(widgetRoot + `.querySelector('button.b').textContent`); got != "Try again" {
		t.Errorf("after the error the button says %q, want Try again", got)
	}
	b2.screenshot("error")
}

// shopWithAda is the common stack: skin "shop" (policy require) keyed with
// a fresh skin key, one operator Ada holding that key, on duty and
// available.
func shopWithAda(t testing.TB) *stack {
	t.Helper()
	skinKey := key(t, "skin")
	op := opSpec{user: "ada", name: "Ada", key: skinKey}
	s := newStack(t, []store.Skin{skinWithKey("shop", store.PolicyRequire, skinKey, op)}, []opSpec{op})
	s.waitAvailable("shop")
	return s
}
