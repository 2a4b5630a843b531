package web

import (
	"bytes"
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/store"
)

func TestSkinKeyring(t *testing.T) {
	srv, st, _, now := newTestServer(t, fstest.MapFS{})
	if err := st.CreateSkin(store.Skin{Name: "library", Title: "Library", Policy: store.PolicyRequire,
		Origins: []string{"https://library.example"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateSkin(store.Skin{Name: "shop", Title: "Shop", Policy: store.PolicyRequire}); err != nil {
		t.Fatal(err)
	}
	// No keyring yet: a 404 the listed origin can read.
	resp, _ := get(t, srv.URL+"/skins/library.keyring", "Origin", "https://library.example")
	if resp.StatusCode != 404 || resp.Header.Get("Access-Control-Allow-Origin") != "https://library.example" {
		t.Fatalf("no keyring: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	signed, err := keyring.Sign(keyring.Keyring{Skin: "library", Serial: 4, NotAfter: now.Add(time.Hour),
		Keys: []keyring.Key{{Kind: keyring.KindOTR, Value: "1921C1B48AC86D702A3ADA33A2D7A86A1771FC70"}}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutKeyring(signed); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, srv.URL+"/skins/library.keyring", "Origin", "https://library.example")
	if resp.StatusCode != 200 || body != string(signed) {
		t.Fatalf("keyring: %d\n%s\nwant the signed bytes\n%s", resp.StatusCode, body, signed)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://library.example" {
		t.Errorf("ACAO for a listed origin = %q", got)
	}
	if _, err := keyring.Verify([]byte(body), priv.Public().(ed25519.PublicKey), "library", *now, 4); err != nil {
		t.Errorf("what is served does not verify: %v", err)
	}
	// CORS exactly like the skin JSON: an unlisted origin may not read it.
	resp, _ = get(t, srv.URL+"/skins/library.keyring", "Origin", "https://evil.example")
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("ACAO for an unlisted origin = %q", got)
	}
	req, _ := http.NewRequest("OPTIONS", srv.URL+"/skins/library.keyring", nil)
	req.Header.Set("Origin", "https://library.example")
	pre, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pre.Body.Close()
	if pre.StatusCode != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://library.example" {
		t.Errorf("preflight: %d %q", pre.StatusCode, pre.Header.Get("Access-Control-Allow-Origin"))
	}
	for _, path := range []string{"/skins/nope.keyring", "/skins/shop.keyring", "/skins/Bad.keyring", "/skins/.keyring"} {
		resp, body := get(t, srv.URL+path, "Origin", "https://anywhere.example")
		if resp.StatusCode != 404 || strings.Contains(body, "otrdesk-keyring") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	// A removed skin's keyring is not served, even though the store keeps it
	// (so its serial can only grow if the skin comes back).
	if err := st.DeleteSkin("library"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, srv.URL+"/skins/library.keyring"); resp.StatusCode != 404 {
		t.Errorf("keyring of a removed skin: %d", resp.StatusCode)
	}
	// The skin JSON still answers as before.
	if resp, _ := get(t, srv.URL+"/skins/shop.json", "Origin", "https://x.example"); resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("skin JSON after the refactor: %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}
