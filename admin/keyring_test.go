package admin

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/store"
)

func signKeyring(t *testing.T, skin string, serial uint64) []byte {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	b, err := keyring.Sign(keyring.Keyring{Skin: skin, Serial: serial, NotAfter: time.Now().Add(time.Hour).Truncate(time.Second),
		Keys: []keyring.Key{{Kind: keyring.KindOTR, Value: "1921C1B48AC86D702A3ADA33A2D7A86A1771FC70"}}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The keyring API keeps the exact bytes, refuses what a browser would
// refuse anyway (another skin, a serial that does not grow), and its errors
// mean the same through the Client as on the store.
func TestKeyringAPI(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	changes := 0
	local := &Local{Store: st, OnChange: func() { changes++ }}
	srv := httptest.NewServer(Handler(local, st, "tok-keyring-0001"))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: "tok-keyring-0001", HTTP: srv.Client()}
	if _, err := local.CreateSkin(store.Skin{Name: "bank", Title: "Bank"}); err != nil {
		t.Fatal(err)
	}
	changes = 0

	for _, svc := range []Keyrings{c, local} {
		if _, err := svc.Keyring("bank"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%T: no keyring yet: %v", svc, err)
		}
	}
	k3 := signKeyring(t, "bank", 3)
	got, err := c.PutKeyring("bank", k3)
	if err != nil || got.Serial != 3 || !bytes.Equal(got.Signed, k3) {
		t.Fatalf("put through the API: %+v %v", got, err)
	}
	if changes != 1 {
		t.Errorf("serve was told of %d changes, want 1", changes)
	}
	stored, err := st.Keyring("bank")
	if err != nil || !bytes.Equal(stored.Signed, k3) {
		t.Fatalf("the store does not hold the bytes as signed: %v", err)
	}
	if back, err := c.Keyring("bank"); err != nil || !bytes.Equal(back.Signed, k3) || back.Serial != 3 {
		t.Fatalf("get through the API: %+v %v", back, err)
	}

	for _, bad := range []struct {
		name, skin string
		body       []byte
		want       error
	}{
		{"another skin's keyring", "bank", signKeyring(t, "shop", 9), ErrBadRequest},
		{"same serial", "bank", signKeyring(t, "bank", 3), store.ErrInvalid},
		{"lower serial", "bank", signKeyring(t, "bank", 2), store.ErrInvalid},
		{"unknown skin", "shop", signKeyring(t, "shop", 9), store.ErrNotFound},
		{"not a keyring", "bank", []byte(`{"keys":[]}`), ErrBadRequest},
		{"CRLF", "bank", bytes.ReplaceAll(signKeyring(t, "bank", 4), []byte("\n"), []byte("\r\n")), ErrBadRequest},
		{"too big", "bank", bytes.Repeat([]byte("k"), keyring.MaxSize+1), ErrBadRequest},
	} {
		for _, svc := range []Keyrings{c, local} {
			if _, err := svc.PutKeyring(bad.skin, bad.body); !errors.Is(err, bad.want) && !(bad.want == store.ErrInvalid && errors.Is(err, ErrBadRequest)) {
				t.Errorf("%T %s: %v, want %v", svc, bad.name, err, bad.want)
			}
		}
	}
	if stored, _ := st.Keyring("bank"); !bytes.Equal(stored.Signed, k3) {
		t.Fatal("a refused upload changed the stored keyring")
	}

	// Raw HTTP: the GET answers the signed bytes as text; no token, no keyring.
	req, _ := http.NewRequest("GET", srv.URL+"/admin/v1/skins/bank/keyring", nil)
	req.Header.Set("Authorization", "Bearer tok-keyring-0001")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, k3) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET keyring: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	req, _ = http.NewRequest("PUT", srv.URL+"/admin/v1/skins/bank/keyring", bytes.NewReader(signKeyring(t, "bank", 10)))
	if resp, err := srv.Client().Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("PUT without a token: %v %v", resp, err)
	}
}

// With keys.signers set, the service stores only keyrings they signed.
func TestKeyringSignersConfigured(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ours := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)) // signKeyring's key
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	l := &Local{Store: st, Signers: []ed25519.PublicKey{other.Public().(ed25519.PublicKey)}}
	if _, err := l.CreateSkin(store.Skin{Name: "bank", Title: "Bank"}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PutKeyring("bank", signKeyring(t, "bank", 1)); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "keys.signers") {
		t.Fatalf("a keyring of an unlisted signer: %v", err)
	}
	if _, err := st.Keyring("bank"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused keyring was stored: %v", err)
	}
	l.Signers = append(l.Signers, ours.Public().(ed25519.PublicKey))
	if _, err := l.PutKeyring("bank", signKeyring(t, "bank", 1)); err != nil {
		t.Fatalf("a keyring of a listed signer: %v", err)
	}
}
