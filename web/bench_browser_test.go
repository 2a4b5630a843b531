package web_test

// The widget's first impression, measured: from the click on the launcher
// to "This chat uses end-to-end encryption." in headless Chromium on
// loopback, with the Go demo operator and with libotr as the operator (and
// with the Go operator answering over OMEMO, from one trusted device), on
// a first visit (empty cache: a new browser context each time), on a
// visit with the assets cached, and cached with the launcher focused before
// the click (tabbing to it, or a pointer resting on it, warms the engine:
// the click comes once the warm-up is done). Each opening is a new visitor
// (new BOSH session, new chat), and each is ended before the next.
//
// Where the time goes comes from the widget's own performance marks
// ("otrdesk:<step>": launcher, otr.js, the worker, the XMPP login) read
// from the page after each opening, as milliseconds after the click.
//
// OTRDESK_BENCH_BASE=<commit> measures that commit's widget too, in the
// same run and against the same server, operators and browser: its web/
// is built in a temporary git worktree (node build.mjs). A widget older
// than the marks shows only the click and the sentence.
//
// Run: make bench, or
//
//	cd web && go test -run '^$' -bench BenchmarkWidget -benchtime 20x .

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/chromedp/chromedp"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// widgetBuild is one build of the widget's assets (a web/dist).
type widgetBuild struct {
	name string
	dist fs.FS
}

// opening is one chat opening: each mark's time after the click, in ms.
type opening map[string]float64

// benchResult gathers the openings of one (operator, build, cache) case.
type benchResult struct {
	op, build, cache string
	openings         []opening
}

func BenchmarkWidget(b *testing.B) {
	// A copy of web/dist: a build started meanwhile (another test run
	// rebuilds dist when the sources change) must not change what is served.
	this := filepath.Join(b.TempDir(), "dist")
	if err := os.CopyFS(this, assets(b)); err != nil {
		b.Fatalf("copying web/dist: %v", err)
	}
	builds := []widgetBuild{{"this", os.DirFS(this)}}
	if base := os.Getenv("OTRDESK_BENCH_BASE"); base != "" {
		builds = append(builds, widgetBuild{"base " + base, buildAt(b, base)})
	}
	var results []*benchResult
	for _, op := range []string{"go", "libotr", "omemo"} {
		var s *stack
		var ended func(context.Context) error
		if op == "go" || op == "omemo" {
			bot := "ada"
			if op == "go" {
				s = shopWithAda(b)
			} else {
				s, _ = omemoShop(b, 1, func(int) bool { return true })
				bot = "olga"
			}
			ended = func(ctx context.Context) error {
				_, err := s.bots[bot].Next(ctx, func(e operator.Event) bool {
					return e.Kind == operator.Notice && strings.Contains(e.Text, "the visitor ended the chat")
				})
				return err
			}
		} else {
			var lo *libotrDesk
			s, lo = newLibotrDesk(b)
			ended = lo.waitEnded
		}
		br := newBrowser(b)
		for _, wb := range builds {
			site := benchSite(b, s, wb.dist)
			for _, cache := range []string{"first", "cached", "focused"} {
				if cache == "focused" && wb.name != "this" {
					continue // a widget older than the warm-up has nothing to wait for
				}
				r := &benchResult{op: op, build: wb.name, cache: cache}
				results = append(results, r)
				b.Run(op+"/"+strings.ReplaceAll(wb.name, " ", "-")+"/"+cache, func(b *testing.B) {
					r.openings = r.openings[:0] // only the last run of this case counts
					if cache != "first" {
						openChat(b, br, s, site, ended, false) // fills the cache
					}
					b.StopTimer()
					for i := 0; i < b.N; i++ {
						if cache != "first" {
							r.openings = append(r.openings, openChat(b, br, s, site, ended, cache == "focused"))
							continue
						}
						fresh, closeFresh := freshContext(b, br)
						r.openings = append(r.openings, openChat(b, fresh, s, site, ended, false))
						closeFresh()
					}
					med := median(column(r.openings, "verified"))
					b.ReportMetric(med, "click-to-verified-ms")
				})
			}
		}
	}
	printReport(os.Stdout, builds, results)
}

// openChat opens the chat once as a new visitor and returns the marks.
// focused: the launcher has keyboard focus first (as after tabbing to it),
// and the click comes once the engine it warmed is ready.
func openChat(b *testing.B, br *browser, s *stack, site string, ended func(context.Context) error, focused bool) opening {
	b.Helper()
	br.eval(`(() => { try { sessionStorage.clear(); } catch {} return ''; })()`)
	br.open(site)
	// The click and the sentence as the page sees them, the same for a
	// widget without marks of its own: a capturing listener on the window
	// runs before the launcher's, and an observer of the widget's shadow
	// root marks the moment the sentence is there.
	br.eval(`(() => { const r = ` + widgetRoot + `;
	  addEventListener('click', () => performance.mark('otrdesk:bench-click'), { capture: true, once: true });
	  const mo = new MutationObserver(() => { const s = r.querySelector('.s');
	    if (s && s.textContent === ` + jsString(sentVerified) + `) { performance.mark('otrdesk:verified'); mo.disconnect(); } });
	  mo.observe(r, { subtree: true, childList: true, characterData: true }); return ''; })()`)
	if focused {
		br.eval(`(() => { performance.mark('otrdesk:bench-focus'); ` + widgetRoot + `.querySelector('button.b').focus(); return ''; })()`)
		br.waitFor("the warmed engine", `performance.getEntriesByName('otrdesk:warm').length > 0`)
	}
	b.StartTimer()
	br.clickLauncher()
	br.waitFor("the verified sentence", `performance.getEntriesByName('otrdesk:verified').length > 0`)
	b.StopTimer()
	var marks [][2]any
	raw := br.eval(`JSON.stringify(performance.getEntriesByType('mark').filter((m) => m.name.startsWith('otrdesk:')).map((m) => [m.name.slice(8), m.startTime])
	  .concat(performance.getEntriesByType('resource').filter((e) => /\/(skins|assets)\//.test(e.name)).map((e) => ['got ' + e.name.replace(/^.*\//, '').replace(/-[0-9a-f]{16}\./, '.'), e.responseEnd])))`)
	if err := json.Unmarshal([]byte(raw), &marks); err != nil {
		b.Fatalf("reading the page's marks: %v", err)
	}
	o := opening{}
	var click, focus, warm float64
	for _, m := range marks {
		switch m[0] {
		case "bench-click":
			click = m[1].(float64)
		case "bench-focus":
			focus = m[1].(float64)
		case "warm":
			warm = m[1].(float64)
		}
	}
	if focus > 0 && warm > focus {
		o["(focus to warm engine, before the click)"] = warm - focus
	}
	for _, m := range marks {
		name, at := m[0].(string), m[1].(float64)
		if strings.HasPrefix(name, "bench-") || at < click {
			continue // before the click: a hover's work, or the page's load
		}
		if _, dup := o[name]; !dup { // the first of each step
			o[name] = at - click
		}
	}
	br.do("ending the chat", chromedp.Click(inWidget("button.end")))
	ctx, cancel := context.WithTimeout(s.ctx, waitLong)
	defer cancel()
	if err := ended(ctx); err != nil {
		b.Fatalf("the chat did not end: %v", err)
	}
	return o
}

// freshContext is a new browser context (an empty cache, as for a first
// visit) in the same browser.
func freshContext(b *testing.B, br *browser) (*browser, context.CancelFunc) {
	b.Helper()
	ctx, cancel := chromedp.NewContext(br.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		b.Fatalf("a new browser context: %v", err)
	}
	return &browser{t: b, ctx: ctx, dir: br.dir}, cancel
}

// benchSite serves a build of the widget as otrdesk would (web.New over
// the stack's store and component) and an embedding page for it under the
// strict CSP; it returns the page's URL.
func benchSite(b testing.TB, s *stack, dist fs.FS) string {
	b.Helper()
	wl := listen(b)
	widgetURL := "http://" + wl.Addr().String()
	serve(b, wl, web.New(web.Config{
		PublicURL: widgetURL, BOSHURL: s.srv.BOSHURL, AnonymousDomain: xmpptest.AnonDomain,
		ComponentDomain: componentDomain, Store: s.st, Component: s.comp, Assets: dist,
	}))
	bosh := s.srv.BOSHURL
	if i := strings.Index(bosh[len("http://"):], "/"); i >= 0 {
		bosh = bosh[:len("http://")+i]
	}
	pl := listen(b)
	serve(b, pl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", fmt.Sprintf("default-src 'none'; script-src %s 'wasm-unsafe-eval'; worker-src blob:; connect-src %s %s; base-uri 'none'", widgetURL, widgetURL, bosh))
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example shop</title></head>
<body><h1>Example shop</h1><script async src="%s/widget.js" data-skin="shop"></script></body></html>`, html.EscapeString(widgetURL))
	}))
	return "http://localhost:" + portOf(pl.Addr()) + "/"
}

// buildAt builds web/dist as it was at commit, in a temporary worktree.
func buildAt(b *testing.B, commit string) fs.FS {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "base")
	git := func(args ...string) {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			b.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("worktree", "add", "--detach", dir, commit)
	b.Cleanup(func() { git("worktree", "remove", "--force", dir) })
	nm, err := filepath.Abs("node_modules")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink(nm, filepath.Join(dir, "web", "node_modules")); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("node", "build.mjs")
	cmd.Dir = filepath.Join(dir, "web")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("building the widget of %s: %v\n%s", commit, err, out)
	}
	return os.DirFS(filepath.Join(dir, "web", "dist"))
}

// libotrDesk is libotr as the operator of skin "shop", run by a goroutine
// that reads the operator's stanzas: it approves the skin's subscription,
// hands every body from a visitor to libotr and sends what libotr answers.
type libotrDesk struct {
	mu     sync.Mutex
	ends   int // notices that a visitor ended the chat
	seen   int // of which waitEnded has consumed
	signal chan struct{}
}

func newLibotrDesk(b *testing.B) (*stack, *libotrDesk) {
	b.Helper()
	peer := libotrtest.StartPeer(b, libotrtest.PeerConfig{Account: "ada@" + xmpptest.Domain, PeerName: "visitor@" + componentDomain})
	sk := skinWithKey("shop", store.PolicyRequire, nil, opSpec{user: "ada", name: "Ada"})
	sk.Keys = []store.SkinKey{{Fingerprint: otr.Fingerprint(peer.Fingerprint()), Created: time.Now()}}
	s := newStack(b, []store.Skin{sk}, nil)
	c := dialOperator(b, s, "ada")
	d := &libotrDesk{signal: make(chan struct{}, 1)}
	ctx, stop := context.WithCancel(s.ctx)
	done := make(chan struct{})
	b.Cleanup(func() {
		stop()
		<-done
	})
	go func() {
		defer close(done)
		for {
			st, err := c.Next(ctx, nil)
			if err != nil {
				return
			}
			switch {
			case st.Name == "presence" && st.Type == "subscribe":
				_ = c.Subscribed(ctx, st.From)
				_ = c.Presence(ctx, "", 1)
			case st.Name == "message" && st.HasBody && strings.HasPrefix(st.From, "guest-"):
				if !strings.HasPrefix(st.Body, "?OTR") && strings.Contains(st.Body, "ended the chat") {
					d.mu.Lock()
					d.ends++
					d.mu.Unlock()
					select {
					case d.signal <- struct{}{}:
					default:
					}
					continue
				}
				alias := strings.SplitN(st.From, "/", 2)[0]
				for _, out := range peer.Receive([]byte(st.Body)).Out {
					_ = c.Message(ctx, alias, string(out))
				}
			}
		}
	}()
	s.waitAvailable("shop")
	return s, d
}

// waitEnded waits for the next notice that a visitor ended the chat.
func (d *libotrDesk) waitEnded(ctx context.Context) error {
	for {
		d.mu.Lock()
		if d.ends > d.seen {
			d.seen++
			d.mu.Unlock()
			return nil
		}
		d.mu.Unlock()
		select {
		case <-d.signal:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func column(os []opening, name string) []float64 {
	var v []float64
	for _, o := range os {
		if t, ok := o[name]; ok {
			v = append(v, t)
		}
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// printReport prints the asset sizes of each build, the medians of each
// case, and the breakdown of each case: every step's median time after the
// click, in the order the steps happen.
func printReport(w *os.File, builds []widgetBuild, results []*benchResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "\nwidget assets (bytes)")
	fmt.Fprintln(tw, "build\tasset\traw\tgzip\tbrotli\t")
	for _, wb := range builds {
		var sizes map[string]struct{ Raw, Gzip, Brotli int }
		if raw, err := fs.ReadFile(wb.dist, "sizes.json"); err == nil && json.Unmarshal(raw, &sizes) == nil {
			names := make([]string, 0, len(sizes))
			for n := range sizes {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				sz := sizes[n]
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t\n", wb.name, strings.SplitN(n, " ", 2)[0], sz.Raw, sz.Gzip, sz.Brotli)
			}
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nclick -> verified sentence (ms)")
	fmt.Fprintln(tw, "operator\tbuild\tcache\tn\tmedian\tmin\tmax\t")
	for _, r := range results {
		v := column(r.openings, "verified")
		if len(v) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.0f\t%.0f\t\n", r.op, r.build, r.cache, len(v), median(v), slices.Min(v), slices.Max(v))
	}
	tw.Flush()

	for _, r := range results {
		if len(r.openings) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nbreakdown: %s operator, %s widget, %s visit (median ms after the click, n=%d)\n", r.op, r.build, r.cache, len(r.openings))
		type step struct {
			name string
			at   float64
		}
		var steps []step
		names := map[string]bool{}
		for _, o := range r.openings {
			for n := range o {
				names[n] = true
			}
		}
		for n := range names {
			if strings.HasPrefix(n, "(") {
				continue
			}
			steps = append(steps, step{n, median(column(r.openings, n))})
		}
		sort.Slice(steps, func(i, j int) bool { return steps[i].at < steps[j].at })
		prev := 0.0
		for _, st := range steps {
			fmt.Fprintf(tw, "%s\t%.0f\t+%.0f\t\n", st.name, st.at, st.at-prev)
			prev = st.at
		}
		tw.Flush()
		for n := range names {
			if strings.HasPrefix(n, "(") {
				fmt.Fprintf(w, "%s: median %.0f ms\n", n, median(column(r.openings, n)))
			}
		}
	}
}
