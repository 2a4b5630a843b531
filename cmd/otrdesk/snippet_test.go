package main

import (
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// The snippet's integrity hash must be that of the bytes the server serves
// at the URL the snippet names, or browsers refuse the widget.
func TestSnippetMatchesServedWidget(t *testing.T) {
	assets := fstest.MapFS{"widget.js": {Data: []byte("/* launcher */ console.log(1)\n")}}
	srv := httptest.NewServer(web.New(web.Config{Assets: assets}))
	defer srv.Close()
	w, err := web.LoadWidget(assets)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(writeConfig(t, minimalConfig, "x"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.HTTP.PublicURL = srv.URL
	now := time.Now()
	sk := store.Skin{Name: "library", Keys: []store.SkinKey{
		{Fingerprint: mustFingerprint("1921c1b48ac86d702a3ada33a2d7a86a1771fc70"), Created: now},
		{Fingerprint: mustFingerprint("00112233445566778899aabbccddeeff00112233"), Created: now.Add(-time.Hour), Retired: now.Add(-time.Minute)},
	}}
	out, err := snippet(sk, cfg, false, now, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`src="([^"]+)" integrity="([^"]+)" crossorigin="anonymous"`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no pinned script tag in %q", out)
	}
	resp, err := srv.Client().Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha512.Sum384(body)
	if resp.StatusCode != 200 || m[2] != "sha384-"+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("snippet integrity %s does not match what %s serves (%d)", m[2], m[1], resp.StatusCode)
	}
	if !strings.Contains(out, `data-skin="library"`) ||
		!strings.Contains(out, `data-fingerprint="1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70,00112233 44556677 8899AABB CCDDEEFF 00112233"`) {
		t.Fatalf("snippet lacks the skin or the current-then-grace fingerprints: %s", out)
	}

	floating, err := snippet(sk, cfg, true, now, web.Widget{}, nil)
	if err != nil || strings.Contains(floating, "integrity") || !strings.Contains(floating, srv.URL+"/widget.js") {
		t.Fatalf("floating snippet %q %v", floating, err)
	}
	if _, err := snippet(store.Skin{Name: "nokey"}, cfg, false, now, w, nil); err == nil || !strings.Contains(err.Error(), "keys generate") {
		t.Fatalf("a skin without keys must say to generate one: %v", err)
	}

	// The operators' trusted OMEMO devices are pinned too, in the form the
	// OMEMO clients show; a skin with only those still has a pin.
	var om wire.Fingerprint
	for i := range om {
		om[i] = byte(0xa0 + i)
	}
	withOMEMO, err := snippet(sk, cfg, false, now, w, []wire.Fingerprint{om})
	if err != nil || !strings.Contains(withOMEMO, `1771FC70,00112233 44556677 8899AABB CCDDEEFF 00112233,`+om.String()+`"`) {
		t.Fatalf("the OMEMO key is not pinned after the OTR ones: %s %v", withOMEMO, err)
	}
	if only, err := snippet(store.Skin{Name: "omemo-only"}, cfg, false, now, w, []wire.Fingerprint{om}); err != nil || !strings.Contains(only, `data-fingerprint="`+om.String()+`"`) {
		t.Fatalf("a skin with only OMEMO keys: %s %v", only, err)
	}
}

// mustFingerprint reads a fingerprint written in a test.
func mustFingerprint(s string) otr.Fingerprint {
	f, err := otr.ParseFingerprint(s)
	if err != nil {
		panic(err)
	}
	return f
}
