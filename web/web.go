// Package web is otrdesk's HTTP side:
//
//	GET /healthz              200 while the process runs
//	GET /readyz               200 while the component stream is up and the store open, else 503 + reason
//	GET /widget.js            the launcher (floating embed)
//	GET /widget-<hash>.js     the same bytes at an immutable URL, for pinned (SRI) embeds
//	GET /assets/<file>        the chat bundle, worker and wasm the launcher loads; immutable
//	GET /skins/<name>.json    the public skin: title, colours, policy, JIDs, OTR fingerprints, OMEMO keys, availability
//	GET /skins/<name>.keyring the skin's signed keyring, byte for byte as the admin signed it (keyring.go)
//	GET /demo/<skin>          a plain page that embeds the widget
//	GET /metrics              Prometheus
//	    /admin/v1/...         the admin API (package admin)
//
// The widget's built assets are embedded from web/dist at build time
// (make build). A binary built without them still runs: /widget.js answers
// 503 and says to run make build.
//
// The build also writes each asset compressed with brotli (<file>.br) and
// gzip (<file>.gz); a browser that accepts one gets it, with
// Content-Encoding, and the same bytes as anyone else once decoded (the
// launcher's integrity values are over those). Hashed names (/widget-<hash>.js,
// /assets/...) never change content, so browsers may keep them for a year
// without asking again.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/store"
)

//go:embed all:dist
var dist embed.FS

// Component is what the HTTP side asks of the XMPP component.
type Component interface {
	Ready() (ok bool, reason string)
	Available(skin string) bool
}

// Config configures the handler.
type Config struct {
	PublicURL       string // where browsers reach this server, no trailing slash
	BOSHURL         string
	AnonymousDomain string
	ComponentDomain string

	Store     *store.Store
	Component Component
	Admin     http.Handler // mounted at /admin/v1/; nil: not found
	Metrics   http.Handler // mounted at /metrics; nil: not found
	Logger    *slog.Logger

	FingerprintGrace time.Duration // how long a retired fingerprint stays listed
	Now              func() time.Time
	// Assets overrides the embedded web/dist (tests).
	Assets fs.FS
}

// Widget is the launcher as this binary serves it.
type Widget struct {
	Bytes []byte
	Hash  string // first 16 hex digits of SHA-256: the /widget-<Hash>.js name
	SRI   string // "sha384-..." for the integrity attribute
}

// LoadWidget reads the launcher from assets (nil: the embedded ones). It
// returns ErrNotBuilt when make build was not run.
func LoadWidget(assets fs.FS) (Widget, error) {
	if assets == nil {
		assets = mustSub(dist, "dist")
	}
	b, err := fs.ReadFile(assets, "widget.js")
	if err != nil {
		return Widget{}, ErrNotBuilt
	}
	sum := sha256.Sum256(b)
	return Widget{Bytes: b, Hash: hex.EncodeToString(sum[:8]), SRI: sri384(b)}, nil
}

// ErrNotBuilt says the widget assets are missing from this binary.
var ErrNotBuilt = errors.New("web: widget assets are not built into this binary: run make build")

func mustSub(f fs.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // dir is a literal known to exist
	}
	return s
}

type server struct {
	cfg    Config
	assets fs.FS
	widget Widget
	built  bool
	log    *slog.Logger
	// widgetEnc holds the launcher's precompressed forms, by encoding.
	widgetEnc map[string][]byte
}

// encodings are the content codings the build writes, in the order the
// server prefers them, with the file suffix of each.
var encodings = []struct{ name, suffix string }{{"br", ".br"}, {"gzip", ".gz"}}

// New returns the HTTP handler for everything in the package comment.
func New(cfg Config) http.Handler {
	s := &server{cfg: cfg, assets: cfg.Assets, log: cfg.Logger}
	if s.assets == nil {
		s.assets = mustSub(dist, "dist")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	if w, err := LoadWidget(s.assets); err == nil {
		s.widget, s.built = w, true
		s.widgetEnc = map[string][]byte{}
		for _, e := range encodings {
			if b, err := fs.ReadFile(s.assets, "widget.js"+e.suffix); err == nil {
				s.widgetEnc[e.name] = b
			}
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /widget.js", s.widgetJS)
	mux.HandleFunc("GET /{file}", s.versionedWidget)
	mux.HandleFunc("GET /assets/{file}", s.asset)
	mux.HandleFunc("GET /skins/{file}", s.skinJSON)
	mux.HandleFunc("OPTIONS /skins/{file}", s.skinJSON)
	mux.HandleFunc("GET /demo/{skin}", s.demo)
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Admin != nil {
		mux.Handle("/admin/v1/", cfg.Admin)
	}
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	reason := ""
	if s.cfg.Store == nil {
		reason = "the store is not open"
	} else if err := s.cfg.Store.Ping(); err != nil {
		reason = "the store is not usable: " + err.Error()
	} else if s.cfg.Component == nil {
		reason = "no component"
	} else if ok, why := s.cfg.Component.Ready(); !ok {
		reason = "the component stream is not up: " + why
	}
	if reason != "" {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *server) widgetJS(w http.ResponseWriter, r *http.Request) {
	if !s.built {
		http.Error(w, "widget assets are not built into this otrdesk binary: run make build", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	s.serveWidget(w, r)
}

func (s *server) versionedWidget(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	hash, ok := strings.CutPrefix(name, "widget-")
	hash, ok2 := strings.CutSuffix(hash, ".js")
	if !ok || !ok2 || !s.built || hash != s.widget.Hash {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	s.serveWidget(w, r)
}

func (s *server) serveWidget(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	body := s.widget.Bytes
	h.Add("Vary", "Accept-Encoding")
	for _, e := range encodings {
		if b, ok := s.widgetEnc[e.name]; ok && accepts(r.Header.Get("Accept-Encoding"), e.name) {
			h.Set("Content-Encoding", e.name)
			body = b
			break
		}
	}
	http.ServeContent(w, r, "widget.js", time.Time{}, bytes.NewReader(body))
}

func (s *server) asset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" || strings.HasPrefix(name, ".") || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	for _, e := range encodings {
		if strings.HasSuffix(name, e.suffix) { // a variant, not an asset of its own
			http.NotFound(w, r)
			return
		}
	}
	file := path.Join("assets", name)
	b, err := fs.ReadFile(s.assets, file)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Add("Vary", "Accept-Encoding")
	for _, e := range encodings {
		if !accepts(r.Header.Get("Accept-Encoding"), e.name) {
			continue
		}
		if enc, err := fs.ReadFile(s.assets, file+e.suffix); err == nil {
			h.Set("Content-Encoding", e.name)
			b = enc
			break
		}
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".wasm":
		ctype = "application/wasm"
	case ".js", ".mjs":
		ctype = "text/javascript; charset=utf-8"
	}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// accepts reports whether an Accept-Encoding header value accepts the
// content coding name: listed, or "*", without q=0.
func accepts(header, name string) bool {
	ok := false
	for item := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(item, ";")
		coding = strings.TrimSpace(coding)
		if !strings.EqualFold(coding, name) && coding != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if strings.EqualFold(coding, name) {
			return q > 0 // the coding named outright decides
		}
		ok = q > 0
	}
	return ok
}

// SkinJSON is the public view of a skin, GET /skins/<name>.json. It holds
// nothing an operator or admin would not want a visitor to see: no
// operator JIDs, no device IDs.
//
// The two key lists are what an unpinned (floating) widget trusts; a page
// with data-fingerprint or data-signer ignores them and trusts only its
// pins or its signed keyring, since the service that serves this JSON may
// be the attacker. Both lists are arrays, empty rather than null.
type SkinJSON struct {
	Name            string `json:"name"`
	Title           string `json:"title"`
	Greeting        string `json:"greeting"`
	Color           string `json:"color"`
	Policy          string `json:"policy"`
	JID             string `json:"jid"`
	BOSHURL         string `json:"bosh_url"`
	AnonymousDomain string `json:"anonymous_domain"`
	// Fingerprints are the skin's OTR fingerprints, current first, then
	// retired ones still in grace: five groups of eight upper-case hex
	// digits.
	Fingerprints []string `json:"fingerprints"`
	// OMEMOFingerprints are the identity keys of the operators' OMEMO
	// devices the skin trusts with a recorded key (otrdesk keys
	// add-device), of accounts that are still its operators: 64 lower-case
	// hex digits each, the 32-byte Curve25519 key without the 05 type
	// byte, the same text as a keyring's omemo lines. A device trusted by
	// ID alone is not listed.
	OMEMOFingerprints []string `json:"omemo_fingerprints"`
	Available         bool     `json:"available"`
}

// publicSkin reads the skin a public URL names, or answers the request
// itself (false): 404 for a bad or unknown name, 500 when the store fails.
func (s *server) publicSkin(w http.ResponseWriter, r *http.Request, name string) (store.Skin, bool) {
	if store.ValidSkinName(name) != nil || s.cfg.Store == nil {
		http.NotFound(w, r)
		return store.Skin{}, false
	}
	sk, err := s.cfg.Store.Skin(name)
	if errors.Is(err, store.ErrNotFound) {
		// Readable from any origin, so the widget can say the chat does not
		// exist instead of reporting a network error; it reveals nothing.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		http.Error(w, "no such skin", http.StatusNotFound)
		return store.Skin{}, false
	}
	if err != nil {
		s.log.Error("reading skin", "skin", name, "err", err)
		http.Error(w, "the skin could not be read", http.StatusInternalServerError)
		return store.Skin{}, false
	}
	return sk, true
}

func (s *server) skinJSON(w http.ResponseWriter, r *http.Request) {
	if name, ok := strings.CutSuffix(r.PathValue("file"), ".keyring"); ok {
		s.skinKeyring(w, r, name)
		return
	}
	name, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if !ok {
		http.NotFound(w, r)
		return
	}
	sk, ok := s.publicSkin(w, r, name)
	if !ok {
		return
	}
	h := w.Header()
	if skinCORS(w, r, sk) {
		return
	}
	available := false
	if s.cfg.Component != nil {
		available = s.cfg.Component.Available(name)
	}
	fps := []string{} // for people and the widget alike: five groups of eight upper-case hex digits
	for _, f := range admin.Published(sk, s.cfg.Now(), s.cfg.FingerprintGrace) {
		fps = append(fps, f.String())
	}
	devs, err := s.cfg.Store.Devices(sk.Name, "")
	if err != nil {
		s.log.Error("reading the skin's trusted OMEMO devices", "skin", name, "err", err)
		http.Error(w, "the skin could not be read", http.StatusInternalServerError)
		return
	}
	omemo := []string{} // between programs: 64 lower-case hex digits, as in the keyring
	for _, f := range admin.PublishedDevices(sk, admin.TrustedDevicesOf(devs)) {
		omemo = append(omemo, hex.EncodeToString(f[:]))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	_ = json.NewEncoder(w).Encode(SkinJSON{
		Name: sk.Name, Title: sk.Title, Greeting: sk.Greeting, Color: sk.Color,
		Policy: string(sk.Policy), JID: sk.Name + "@" + s.cfg.ComponentDomain,
		BOSHURL: s.cfg.BOSHURL, AnonymousDomain: s.cfg.AnonymousDomain,
		Fingerprints: fps, OMEMOFingerprints: omemo, Available: available,
	})
}

// skinCORS lets the skin's origins (any origin when it lists none) read
// what is served about it, and answers a preflight; it reports whether it
// did (then the request is done).
func skinCORS(w http.ResponseWriter, r *http.Request, sk store.Skin) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	if origin := r.Header.Get("Origin"); origin != "" {
		if len(sk.Origins) == 0 {
			h.Set("Access-Control-Allow-Origin", "*")
		} else if slices.Contains(sk.Origins, origin) {
			h.Set("Access-Control-Allow-Origin", origin)
		}
	}
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — otrdesk demo</title>
<link rel="icon" href="data:,">
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>This page embeds the otrdesk chat box for the skin <code>{{.Name}}</code>. Open it with the button in the corner.</p>
</main>
<script src="{{.Src}}" data-skin="{{.Name}}" async></script>
</body>
</html>
`))

func (s *server) demo(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("skin")
	if s.cfg.Store == nil || store.ValidSkinName(name) != nil {
		http.NotFound(w, r)
		return
	}
	sk, err := s.cfg.Store.Skin(name)
	if err != nil {
		http.Error(w, "no such skin", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", demoCSP(s.cfg.PublicURL, s.cfg.BOSHURL))
	_ = demoPage.Execute(w, struct{ Title, Name, Src string }{sk.Title, sk.Name, s.cfg.PublicURL + "/widget.js"})
}

// demoCSP is the strict policy a careful embedding site sends (scripts
// only from otrdesk, wasm, blob: workers), so the demo proves the widget
// works under it.
func demoCSP(public, bosh string) string {
	origin := func(s string) string {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host
		}
		return s
	}
	return fmt.Sprintf("script-src %s 'wasm-unsafe-eval'; worker-src blob:; connect-src %s %s",
		origin(public), origin(public), origin(bosh))
}
