package web

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// state is a Component whose answers the test sets.
type state struct {
	ready     bool
	available map[string]bool
}

func (s *state) Ready() (bool, string) {
	if s.ready {
		return true, ""
	}
	return false, "not connected to 127.0.0.1:5347"
}
func (s *state) Available(skin string) bool { return s.available[skin] }

func newTestServer(t *testing.T, assets fstestFS) (*httptest.Server, *store.Store, *state, *time.Time) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	comp := &state{available: map[string]bool{}}
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cfg := Config{
		PublicURL: "https://chat.example.org", BOSHURL: "https://example.org/http-bind",
		AnonymousDomain: "guest.example.org", ComponentDomain: "chat.example.org",
		Store: st, Component: comp, FingerprintGrace: 24 * time.Hour,
		Now: func() time.Time { return now },
	}
	if assets != nil {
		cfg.Assets = assets
	}
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	return srv, st, comp, &now
}

type fstestFS = fstest.MapFS

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestHealthAndReady(t *testing.T) {
	srv, _, comp, _ := newTestServer(t, fstest.MapFS{})
	if resp, _ := get(t, srv.URL+"/healthz"); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	resp, body := get(t, srv.URL+"/readyz")
	if resp.StatusCode != 503 || !strings.Contains(body, "component stream is not up") {
		t.Fatalf("readyz while disconnected: %d %q", resp.StatusCode, body)
	}
	comp.ready = true
	if resp, _ := get(t, srv.URL+"/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz while connected: %d", resp.StatusCode)
	}
}

func TestWidgetNotBuilt(t *testing.T) {
	srv, _, _, _ := newTestServer(t, fstest.MapFS{})
	resp, body := get(t, srv.URL+"/widget.js")
	if resp.StatusCode != 503 || !strings.Contains(body, "make build") {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

func TestWidgetServed(t *testing.T) {
	js := []byte("console.log('launcher')")
	srv, _, _, _ := newTestServer(t, fstest.MapFS{
		"widget.js":           {Data: js},
		"assets/chat-ab.wasm": {Data: []byte("\x00asm")},
	})
	w, err := LoadWidget(fstest.MapFS{"widget.js": {Data: js}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/widget.js", "/widget-" + w.Hash + ".js"} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != 200 || body != string(js) || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("%s: %d %q ACAO=%q", path, resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if resp, _ := get(t, srv.URL+"/widget-0000000000000000.js"); resp.StatusCode != 404 {
		t.Fatalf("a stale hash must not be served: %d", resp.StatusCode)
	}
	resp, _ := get(t, srv.URL+"/assets/chat-ab.wasm")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/wasm" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("wasm asset: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := get(t, srv.URL+"/assets/..%2fwidget.js"); resp.StatusCode != 404 {
		t.Fatalf("path escape answered %d", resp.StatusCode)
	}
	if !strings.HasPrefix(w.SRI, "sha384-") {
		t.Fatalf("SRI %q", w.SRI)
	}
}

func addKey(t *testing.T, st *store.Store, skin string, created, retired time.Time, revoked bool) otr.Fingerprint {
	t.Helper()
	k, err := otr.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fp := k.Fingerprint()
	if _, err := st.UpdateSkin(skin, func(s *store.Skin) error {
		s.Keys = append(s.Keys, store.SkinKey{Fingerprint: fp, PublicKey: k.PublicKey.Bytes(), Created: created, Retired: retired, Revoked: revoked})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestSkinJSON(t *testing.T) {
	srv, st, comp, now := newTestServer(t, fstest.MapFS{})
	if err := st.CreateSkin(store.Skin{Name: "library", Title: "Ask a Librarian", Greeting: "Hello!", Color: "#336699",
		Policy: store.PolicyRequire, Operators: []string{"ann@example.org"}, Origins: []string{"https://library.example"}}); err != nil {
		t.Fatal(err)
	}
	cur := addKey(t, st, "library", now.Add(-time.Hour), time.Time{}, false)
	inGrace := addKey(t, st, "library", now.Add(-48*time.Hour), now.Add(-time.Hour), false)
	expired := addKey(t, st, "library", now.Add(-96*time.Hour), now.Add(-25*time.Hour), false)
	revoked := addKey(t, st, "library", now.Add(-72*time.Hour), now.Add(-30*time.Minute), true)
	comp.available["library"] = true
	// Before any OMEMO device is trusted the list is empty, not null: the
	// widget reads it as a list.
	if _, body := get(t, srv.URL+"/skins/library.json"); !strings.Contains(body, `"omemo_fingerprints":[]`) {
		t.Errorf("a skin without trusted devices: %s", body)
	}
	annKey, bobKey := bytes.Repeat([]byte{0xb7}, 32), bytes.Repeat([]byte{0x0c}, 32)
	for _, d := range []store.TrustedDevice{
		{Skin: "library", Account: "ann@example.org", Device: 11, Fingerprint: annKey},
		{Skin: "library", Account: "ann@example.org", Device: 12},                      // by ID alone: no key to list
		{Skin: "library", Account: "bob@example.org", Device: 13, Fingerprint: bobKey}, // not an operator of library
	} {
		if err := st.PutDevice(d); err != nil {
			t.Fatal(err)
		}
	}

	resp, body := get(t, srv.URL+"/skins/library.json", "Origin", "https://library.example")
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://library.example" {
		t.Errorf("ACAO for a listed origin = %q", got)
	}
	var sj SkinJSON
	if err := json.Unmarshal([]byte(body), &sj); err != nil {
		t.Fatal(err)
	}
	want := SkinJSON{Name: "library", Title: "Ask a Librarian", Greeting: "Hello!", Color: "#336699", Policy: "require",
		JID: "library@chat.example.org", BOSHURL: "https://example.org/http-bind", AnonymousDomain: "guest.example.org",
		Fingerprints: []string{cur.String(), inGrace.String()}, Available: true}
	if strings.Join(sj.Fingerprints, "|") != strings.Join(want.Fingerprints, "|") {
		t.Errorf("fingerprints %q, want current then in-grace %q (not expired %s, not revoked %s)", sj.Fingerprints, want.Fingerprints, expired, revoked)
	}
	if got, want := strings.Join(sj.OMEMOFingerprints, "|"), hex.EncodeToString(annKey); got != want {
		t.Errorf("omemo_fingerprints %q, want ann's trusted key alone %q", got, want)
	}
	sj.Fingerprints, want.Fingerprints = nil, nil
	sj.OMEMOFingerprints = nil
	if !reflect.DeepEqual(sj, want) {
		t.Errorf("skin JSON\n got %+v\nwant %+v", sj, want)
	}
	if strings.Contains(body, "ann@example.org") {
		t.Error("the public skin JSON reveals an operator JID")
	}

	resp, _ = get(t, srv.URL+"/skins/library.json", "Origin", "https://evil.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("ACAO for an unlisted origin = %q", got)
	}
	if resp, _ := get(t, srv.URL+"/skins/nope.json", "Origin", "https://library.example"); resp.StatusCode != 404 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("unknown skin: %d, ACAO %q (the widget must be able to read the 404)", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if resp, _ := get(t, srv.URL+"/skins/library"); resp.StatusCode != 404 {
		t.Errorf("no .json: %d", resp.StatusCode)
	}

	// A skin without origins may be embedded anywhere.
	if _, err := st.UpdateSkin("library", func(s *store.Skin) error { s.Origins = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	resp, _ = get(t, srv.URL+"/skins/library.json", "Origin", "https://anywhere.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("ACAO without origins = %q", got)
	}
}

func TestPublishedRevokeDropsAll(t *testing.T) {
	_, st, _, now := newTestServer(t, fstest.MapFS{})
	if err := st.CreateSkin(store.Skin{Name: "bank", Title: "Bank", Policy: store.PolicyOpportunistic, Operators: []string{"ann@example.org"}}); err != nil {
		t.Fatal(err)
	}
	l := &admin.Local{Store: st, Now: func() time.Time { return *now }}
	addKey(t, st, "bank", now.Add(-time.Hour), time.Time{}, false)
	skins, err := l.Revoke([]string{"bank"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if fps := admin.Published(skins[0], *now, 24*time.Hour); len(fps) != 0 {
		t.Fatalf("revoked key still published: %v", fps)
	}
}

func TestDemoPage(t *testing.T) {
	srv, st, _, _ := newTestServer(t, fstest.MapFS{})
	if err := st.CreateSkin(store.Skin{Name: "demo", Title: "Demo <desk>", Policy: store.PolicyOpportunistic, Operators: []string{"op@example.org"}}); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, srv.URL+"/demo/demo")
	if resp.StatusCode != 200 || !strings.Contains(body, `data-skin="demo"`) || !strings.Contains(body, "Demo &lt;desk&gt;") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src https://chat.example.org 'wasm-unsafe-eval'") {
		t.Fatalf("CSP %q", csp)
	}
	if resp, _ := get(t, srv.URL+"/demo/nope"); resp.StatusCode != 404 {
		t.Fatalf("unknown demo skin: %d", resp.StatusCode)
	}
}
