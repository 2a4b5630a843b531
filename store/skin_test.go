package store

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/otr"
)

func demoSkin() Skin {
	return Skin{
		Name:          "demo",
		Title:         "Demo support",
		Greeting:      "Hello!\nHow can we help?",
		Color:         "#1A73e8",
		Policy:        PolicyRequire,
		Operators:     []string{"alice@example.org", "bob@example.org"},
		OperatorNames: map[string]string{"alice@example.org": "Alice"},
		Origins:       []string{"https://www.example.com", "http://localhost:8080"},
	}
}

// testKey is a fake OTR public key: the type bytes and four MPIs. The store
// only checks that the fingerprint is SHA-1 over what follows the type.
func testKey(seed byte, created time.Time) SkinKey {
	pub := []byte{0, 0}
	for i := 0; i < 4; i++ {
		pub = append(pub, 0, 0, 0, 4, seed, byte(i), 1, 2)
	}
	sum := sha1.Sum(pub[2:])
	return SkinKey{Fingerprint: sum, PublicKey: pub, Created: created}
}

func TestValidSkinName(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"simple", "demo", ""},
		{"digits and hyphens", "0-support-2", ""},
		{"63 characters", strings.Repeat("a", 63), ""},
		{"guestbook is fine", "guestbook", ""},
		{"guest alone is fine", "guest", ""},
		{"empty", "", "empty"},
		{"64 characters", strings.Repeat("a", 64), "at most 63"},
		{"upper case", "Demo", "'D'"},
		{"leading hyphen", "-demo", "starts with '-'"},
		{"underscore", "de_mo", "'_'"},
		{"at sign", "demo@x", "'@'"},
		{"dot", "demo.x", "'.'"},
		{"non-ascii", "démo", "use only a-z"},
		{"guest prefix", "guest-abc", "reserved for visitor aliases"},
		{"guest prefix alone", "guest-", "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidSkinName(tt.in)
			if tt.err == "" {
				wantErr(t, err, nil, "")
				return
			}
			wantErr(t, err, ErrInvalid, tt.err)
		})
	}
}

func TestSkinCRUD(t *testing.T) {
	s, clk := newStore(t)

	if _, err := s.Skin("demo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Skin before create: %v, want ErrNotFound", err)
	}
	sk := demoSkin()
	sk.Keys = []SkinKey{testKey(2, t0), testKey(1, t0.Add(-time.Hour))}
	sk.Keys[1].Retired = t0
	if err := s.CreateSkin(sk); err != nil {
		t.Fatalf("CreateSkin: %v", err)
	}
	err := s.CreateSkin(sk)
	wantErr(t, err, ErrExists, "skin demo")

	got, err := s.Skin("demo")
	if err != nil {
		t.Fatalf("Skin: %v", err)
	}
	want := sk
	want.Created, want.Updated = t0, t0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Skin = %+v\nwant %+v", got, want)
	}

	other := demoSkin()
	other.Name, other.Operators, other.OperatorNames, other.Origins = "a-first", nil, nil, nil
	if err := s.CreateSkin(other); err != nil {
		t.Fatalf("CreateSkin a-first: %v", err)
	}
	all, err := s.Skins()
	if err != nil {
		t.Fatalf("Skins: %v", err)
	}
	if len(all) != 2 || all[0].Name != "a-first" || all[1].Name != "demo" {
		t.Fatalf("Skins = %v, want a-first then demo", names(all))
	}

	clk.advance(time.Minute)
	up, err := s.UpdateSkin("demo", func(sk *Skin) error {
		sk.Title = "New title"
		sk.Operators = append(sk.Operators, "Carol@Example.ORG")
		sk.Created = time.Time{} // ignored: Created is kept
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateSkin: %v", err)
	}
	if up.Title != "New title" || !up.Created.Equal(t0) || !up.Updated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("UpdateSkin returned %+v", up)
	}
	if got := up.Operators[2]; got != "carol@example.org" {
		t.Fatalf("new operator stored as %q, want normalised carol@example.org", got)
	}
	got, err = s.Skin("demo")
	if err != nil || !reflect.DeepEqual(got, up) {
		t.Fatalf("Skin after update = %+v, %v\nwant %+v", got, err, up)
	}

	if err := s.DeleteSkin("demo"); err != nil {
		t.Fatalf("DeleteSkin: %v", err)
	}
	wantErr(t, s.DeleteSkin("demo"), ErrNotFound, "demo")
	if _, err := s.Skin("demo"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Skin after delete: %v, want ErrNotFound", err)
	}
	_, err = s.UpdateSkin("demo", func(*Skin) error { return nil })
	wantErr(t, err, ErrNotFound, "demo")
}

func names(sks []Skin) []string {
	var out []string
	for _, sk := range sks {
		out = append(out, sk.Name)
	}
	return out
}

func TestUpdateSkinRefusals(t *testing.T) {
	s, clk := newStore(t)
	if err := s.CreateSkin(demoSkin()); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Skin("demo")
	clk.advance(time.Hour)
	errMine := errors.New("changed my mind")
	tests := []struct {
		name     string
		fn       func(*Skin) error
		sentinel error
		substr   string
	}{
		{"fn error returned as is", func(sk *Skin) error { sk.Title = "x"; return errMine }, errMine, ""},
		{"rename", func(sk *Skin) error { sk.Name = "other"; return nil }, ErrInvalid, "name cannot be changed"},
		{"invalid colour", func(sk *Skin) error { sk.Color = "red"; return nil }, ErrInvalid, "#RRGGBB"},
		{"invalid policy", func(sk *Skin) error { sk.Policy = "maybe"; return nil }, ErrInvalid, `"require", "opportunistic", "plaintext"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpdateSkin("demo", tt.fn)
			if err == nil || !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("UpdateSkin: %v, want %v containing %q", err, tt.sentinel, tt.substr)
			}
			after, err := s.Skin("demo")
			if err != nil || !reflect.DeepEqual(after, before) {
				t.Fatalf("skin changed by a refused update: %+v", after)
			}
		})
	}
}

func TestSkinValidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Skin)
		err    string // "" means valid
	}{
		{"valid", func(*Skin) {}, ""},
		{"no operators", func(sk *Skin) { sk.Operators, sk.OperatorNames = nil, nil }, ""},
		{"no colour", func(sk *Skin) { sk.Color = "" }, ""},
		{"opportunistic", func(sk *Skin) { sk.Policy = PolicyOpportunistic }, ""},
		{"plaintext", func(sk *Skin) { sk.Policy = PolicyPlaintext }, ""},
		{"bad name", func(sk *Skin) { sk.Name = "guest-x" }, "reserved"},
		{"no title", func(sk *Skin) { sk.Title = "" }, "title is empty"},
		{"control character in title", func(sk *Skin) { sk.Title = "a\x07b" }, "control character"},
		{"newline in title", func(sk *Skin) { sk.Title = "a\nb" }, "control character"},
		{"long greeting", func(sk *Skin) { sk.Greeting = strings.Repeat("x", maxGreeting+1) }, "at most 2000"},
		{"bad utf-8", func(sk *Skin) { sk.Greeting = "\xff" }, "UTF-8"},
		{"colour name", func(sk *Skin) { sk.Color = "blue" }, "#RRGGBB"},
		{"short colour", func(sk *Skin) { sk.Color = "#fff" }, "#RRGGBB"},
		{"colour not hex", func(sk *Skin) { sk.Color = "#12345g" }, "#RRGGBB"},
		{"empty policy", func(sk *Skin) { sk.Policy = "" }, `policy ""`},
		{"upper-case policy", func(sk *Skin) { sk.Policy = "Require" }, "not one of"},
		{"operator with resource", func(sk *Skin) { sk.Operators = []string{"alice@example.org/pidgin"} }, "use the bare JID alice@example.org"},
		{"operator domain only", func(sk *Skin) { sk.Operators = []string{"example.org"} }, "no local part"},
		{"operator not a jid", func(sk *Skin) { sk.Operators = []string{"@@"} }, "not a JID"},
		{"operator twice", func(sk *Skin) { sk.Operators = []string{"alice@example.org", "ALICE@example.org"} }, "listed twice"},
		{"name of a non-operator", func(sk *Skin) { sk.OperatorNames = map[string]string{"eve@example.org": "Eve"} }, "not an operator"},
		{"long display name", func(sk *Skin) { sk.OperatorNames = map[string]string{"alice@example.org": strings.Repeat("a", 65)} }, "at most 64"},
		{"origin with path", func(sk *Skin) { sk.Origins = []string{"https://www.example.com/chat"} }, "use scheme://host[:port] only, such as https://www.example.com"},
		{"origin with slash", func(sk *Skin) { sk.Origins = []string{"https://www.example.com/"} }, "has a path"},
		{"origin with query", func(sk *Skin) { sk.Origins = []string{"https://www.example.com?a=b"} }, "query"},
		{"origin with fragment", func(sk *Skin) { sk.Origins = []string{"https://www.example.com#x"} }, "fragment"},
		{"origin without scheme", func(sk *Skin) { sk.Origins = []string{"www.example.com"} }, "scheme http or https"},
		{"origin ftp", func(sk *Skin) { sk.Origins = []string{"ftp://www.example.com"} }, "scheme http or https"},
		{"origin no host", func(sk *Skin) { sk.Origins = []string{"https://"} }, "no host"},
		{"origin bad port", func(sk *Skin) { sk.Origins = []string{"https://example.com:99999"} }, "port"},
		{"origin user", func(sk *Skin) { sk.Origins = []string{"https://u:p@example.com"} }, "user information"},
		{"fingerprint missing", func(sk *Skin) {
			k := testKey(1, t0)
			k.Fingerprint, k.PublicKey = otr.Fingerprint{}, nil
			sk.Keys = []SkinKey{k}
		}, "fingerprint is missing"},
		{"fingerprint of another key", func(sk *Skin) {
			k := testKey(1, t0)
			k.Fingerprint = testKey(2, t0).Fingerprint
			sk.Keys = []SkinKey{k}
		}, "does not match the public key"},
		{"key without type", func(sk *Skin) {
			k := testKey(1, t0)
			k.PublicKey[1] = 1
			sk.Keys = []SkinKey{k}
		}, "0x0000"},
		{"key without time", func(sk *Skin) { sk.Keys = []SkinKey{testKey(1, time.Time{})} }, "set Created"},
		{"key twice", func(sk *Skin) { sk.Keys = []SkinKey{testKey(1, t0), testKey(1, t0)} }, "twice"},
		{"fingerprint only", func(sk *Skin) {
			k := testKey(1, t0)
			k.PublicKey = nil
			sk.Keys = []SkinKey{k}
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			sk := demoSkin()
			tt.change(&sk)
			err := s.CreateSkin(sk)
			if tt.err == "" {
				wantErr(t, err, nil, "")
				return
			}
			wantErr(t, err, ErrInvalid, tt.err)
			if all, _ := s.Skins(); len(all) != 0 {
				t.Fatalf("an invalid skin was stored: %v", names(all))
			}
		})
	}
}

func TestOriginNormalisation(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"as is", "https://www.example.com", "https://www.example.com"},
		{"upper case", "HTTPS://WWW.Example.COM", "https://www.example.com"},
		{"default https port", "https://example.com:443", "https://example.com"},
		{"default http port", "http://example.com:80", "http://example.com"},
		{"other port", "http://localhost:8080", "http://localhost:8080"},
		{"https on 80", "https://example.com:80", "https://example.com:80"},
		{"ipv6", "http://[::1]:8080", "http://[::1]:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := origin(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("origin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSkinValuesAreCopies(t *testing.T) {
	s, _ := newStore(t)
	sk := demoSkin()
	sk.Keys = []SkinKey{testKey(1, t0)}
	if err := s.CreateSkin(sk); err != nil {
		t.Fatal(err)
	}
	sk.Keys[0].PublicKey[5] ^= 0xff // the caller's slice is not the stored one
	a, _ := s.Skin("demo")
	a.Keys[0].PublicKey[6] ^= 0xff
	a.Operators[0] = "mallory@example.org"
	b, _ := s.Skin("demo")
	if want := testKey(1, t0).PublicKey; !bytes.Equal(b.Keys[0].PublicKey, want) || b.Operators[0] != "alice@example.org" {
		t.Fatalf("stored skin changed through a returned value: %+v", b)
	}
}

// A fingerprint is bytes in the program and 40 lower-case hex digits in the
// database, as it was when SkinKey.Fingerprint was a string: records
// written before read the same, and records written now read the same in
// an older otrdesk.
func TestSkinKeyStoredForm(t *testing.T) {
	const stored = `{"title":"T","policy":"require","keys":[{"fingerprint":"1921c1b48ac86d702a3ada33a2d7a86a1771fc70","created":"2026-11-01T00:00:00Z"}],"created":"2026-11-01T00:00:00Z","updated":"2026-11-01T00:00:00Z"}`
	sk, err := decodeSkin("bank", []byte(stored))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := otr.ParseFingerprint("1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70")
	if len(sk.Keys) != 1 || sk.Keys[0].Fingerprint != want {
		t.Fatalf("decoded %+v", sk.Keys)
	}
	b, err := encodeSkin(sk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, []byte(stored)) {
		t.Fatalf("encoded\n%s\nwant the stored form\n%s", b, stored)
	}
	for _, bad := range []string{"1921C1B48AC86D702A3ADA33A2D7A86A1771FC7", "not hex at all", "1921c1b48ac86d702a3ada33a2d7a86a1771fc7011"} {
		if _, err := decodeSkin("bank", []byte(strings.Replace(stored, "1921c1b48ac86d702a3ada33a2d7a86a1771fc70", bad, 1))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("fingerprint %q: %v, want ErrCorrupt", bad, err)
		}
	}
}
