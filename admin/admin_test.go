package admin

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

func newAPI(t *testing.T) (*httptest.Server, *store.Store, *Client) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// Limits high enough that the refusal tests below meet 401, not 429
	// (ratelimit_test.go tests the limits).
	lots := loginLimits{PerAddr: 1e6, PerAddrEvery: time.Second, Total: 1e6, TotalEvery: time.Second, MaxAddrs: 10}
	srv := httptest.NewServer(newHandler(&Local{Store: st}, st, "s3cret-token", newLoginLimiter(lots, time.Now)))
	t.Cleanup(srv.Close)
	return srv, st, &Client{BaseURL: srv.URL, Token: "s3cret-token", HTTP: srv.Client()}
}

func TestAPIRefusesWithoutToken(t *testing.T) {
	srv, st, good := newAPI(t)
	if _, err := good.CreateSkin(store.Skin{Name: "bank", Title: "Bank", Operators: []string{"ann@example.org"}}); err != nil {
		t.Fatal(err)
	}
	before, _ := st.Skin("bank")
	requests := []struct{ method, path, body string }{
		{"GET", "/admin/v1/skins", ""},
		{"POST", "/admin/v1/skins", `{"Name":"evil","Title":"x","Operators":["mallory@example.org"]}`},
		{"PATCH", "/admin/v1/skins/bank", `{"title":"pwned"}`},
		{"DELETE", "/admin/v1/skins/bank", ""},
		{"POST", "/admin/v1/keys", `{"skins":["bank"],"format":"otrjs"}`},
		{"POST", "/admin/v1/keys/register", `{"skins":["bank"],"public_key":"AAA="}`},
		{"POST", "/admin/v1/keys/revoke", `{"all":true}`},
		{"GET", "/admin/v1/backup", ""},
	}
	for _, auth := range []string{"", "Bearer wrong-token", "Bearer s3cret-toke", "Basic s3cret-token", "Bearer s3cret-token-and-more"} {
		for _, r := range requests {
			req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401", r.method, r.path, auth, resp.StatusCode)
			}
			if bytes.Contains(body, []byte("s3cret-token")) {
				t.Errorf("the token is echoed in a refusal")
			}
		}
	}
	after, err := st.Skin("bank")
	if err != nil || after.Title != before.Title || len(after.Keys) != 0 {
		t.Fatalf("a refused request changed the skin: %+v %v", after, err)
	}
	if _, err := st.Skin("evil"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused request created a skin: %v", err)
	}
	// An empty configured token refuses everything, even an empty bearer.
	empty := httptest.NewServer(Handler(&Local{Store: st}, st, ""))
	defer empty.Close()
	c := &Client{BaseURL: empty.URL, Token: "", HTTP: empty.Client()}
	if _, err := c.Skins(); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("API without a configured token: %v", err)
	}
}

func TestAPIErrorsKeepTheirMeaning(t *testing.T) {
	_, _, c := newAPI(t)
	if _, err := c.Skin("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown skin: %v", err)
	}
	s := store.Skin{Name: "bank", Title: "Bank", Operators: []string{"ann@example.org"}}
	if _, err := c.CreateSkin(s); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSkin(s); !errors.Is(err, store.ErrExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := c.CreateSkin(store.Skin{Name: "Bad Name", Title: "x", Operators: []string{"ann@example.org"}}); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, ErrBadRequest) {
		t.Errorf("invalid name: %v", err)
	}
	k := ephemeral(t)
	for name, pub := range map[string][]byte{
		"empty":             nil,
		"not a key":         []byte("hello"),
		"private key bytes": k.PrivateBytes(),
	} {
		if _, err := c.RegisterKey(KeyRegistration{Skins: []string{"bank"}, PublicKey: pub}); !errors.Is(err, ErrBadRequest) {
			t.Errorf("register %s: %v", name, err)
		}
	}
	if _, err := c.RegisterKey(KeyRegistration{Skins: []string{"nope"}, PublicKey: k.PublicKey.Bytes()}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("register for an unknown skin: %v", err)
	}
	if s, _ := c.Skin("bank"); len(s.Keys) != 0 {
		t.Errorf("refused registrations stored keys: %+v", s.Keys)
	}
}

func ephemeral(t *testing.T) *otr.PrivateKey {
	t.Helper()
	k, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Only a public key ever reaches the service; the old endpoint that made
// keys in the service refuses, saying what to do instead.
func TestRegisterKey(t *testing.T) {
	srv, st, c := newAPI(t)
	for _, n := range []string{"a", "b"} {
		if _, err := c.CreateSkin(store.Skin{Name: n, Title: n, Operators: []string{"ann@example.org"}}); err != nil {
			t.Fatal(err)
		}
	}
	k := ephemeral(t)
	out, err := c.RegisterKey(KeyRegistration{All: true, PublicKey: k.PublicKey.Bytes()})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0].Name != "a" || out[1].Name != "b" {
		t.Fatalf("register answered %+v", out)
	}
	for _, n := range []string{"a", "b"} {
		s, _ := st.Skin(n)
		if len(s.Keys) != 1 || s.Keys[0].Fingerprint != k.Fingerprint() || !bytes.Equal(s.Keys[0].PublicKey, k.PublicKey.Bytes()) {
			t.Errorf("skin %s keys %+v", n, s.Keys)
		}
	}
	// Registering the current key again changes nothing.
	if _, err := c.RegisterKey(KeyRegistration{Skins: []string{"a"}, PublicKey: k.PublicKey.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Skin("a"); len(s.Keys) != 1 {
		t.Errorf("the same key registered twice made %d history entries", len(s.Keys))
	}
	// A retired key cannot come back.
	if _, err := c.RegisterKey(KeyRegistration{Skins: []string{"a"}, PublicKey: ephemeral(t).PublicKey.Bytes()}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterKey(KeyRegistration{Skins: []string{"a"}, PublicKey: k.PublicKey.Bytes()}); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "generate a new key") {
		t.Errorf("a retired key registered again: %v", err)
	}

	req, _ := http.NewRequest("POST", srv.URL+"/admin/v1/keys", strings.NewReader(`{"skins":["a"],"format":"otrjs"}`))
	req.Header.Set("Authorization", "Bearer s3cret-token")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e errorBody
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(e.Error, "otrdesk keys generate") {
		t.Fatalf("the old generate endpoint: %d %+v", resp.StatusCode, e)
	}
	if s, _ := st.Skin("a"); len(s.Keys) != 2 {
		t.Errorf("the old endpoint changed the keys: %+v", s.Keys)
	}
}

func TestRotationHistoryAndGrace(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	l := &Local{Store: st, Now: func() time.Time { return now }}
	if _, err := l.CreateSkin(store.Skin{Name: "bank", Title: "Bank", Operators: []string{"ann@example.org"}}); err != nil {
		t.Fatal(err)
	}
	first, second := ephemeral(t), ephemeral(t)
	if _, err := l.RegisterKey(KeyRegistration{Skins: []string{"bank"}, PublicKey: first.PublicKey.Bytes()}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * 24 * time.Hour)
	if _, err := l.RegisterKey(KeyRegistration{Skins: []string{"bank"}, PublicKey: second.PublicKey.Bytes()}); err != nil {
		t.Fatal(err)
	}
	s, _ := st.Skin("bank")
	for name, tc := range map[string]struct {
		at   time.Time
		want []otr.Fingerprint
	}{
		"right after":  {now, []otr.Fingerprint{second.Fingerprint(), first.Fingerprint()}},
		"inside grace": {now.Add(23 * time.Hour), []otr.Fingerprint{second.Fingerprint(), first.Fingerprint()}},
		"after grace":  {now.Add(25 * time.Hour), []otr.Fingerprint{second.Fingerprint()}},
		"long after":   {now.Add(365 * 24 * time.Hour), []otr.Fingerprint{second.Fingerprint()}},
	} {
		if got := Published(s, tc.at, 24*time.Hour); !slices.Equal(got, tc.want) {
			t.Errorf("%s: published %v, want %v", name, got, tc.want)
		}
	}
	if len(s.Keys) != 2 || !s.Keys[1].Retired.Equal(now) || !s.Keys[0].Retired.IsZero() {
		t.Errorf("history %+v", s.Keys)
	}
}

func TestBackupThroughAPI(t *testing.T) {
	_, _, c := newAPI(t)
	if _, err := c.CreateSkin(store.Skin{Name: "bank", Title: "Bank", Operators: []string{"ann@example.org"}}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "copy.db")
	f, _ := os.Create(p)
	if _, err := c.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	st, err := store.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s, err := st.Skin("bank"); err != nil || s.Title != "Bank" {
		t.Fatalf("backup: %+v %v", s, err)
	}
}

func TestSkinPatchJSON(t *testing.T) {
	var p SkinPatch
	if err := json.Unmarshal([]byte(`{"title":"New","operator_names":{"ann@example.org":"Ann","bob@example.org":""}}`), &p); err != nil {
		t.Fatal(err)
	}
	s := store.Skin{Title: "Old", Greeting: "Hi", OperatorNames: map[string]string{"bob@example.org": "Bob"}}
	p.apply(&s)
	if s.Title != "New" || s.Greeting != "Hi" || s.OperatorNames["ann@example.org"] != "Ann" || len(s.OperatorNames) != 1 {
		t.Fatalf("%+v", s)
	}
}
