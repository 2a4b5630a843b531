package libotrtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBuildCaches(t *testing.T) {
	a, b := Build(t, "keytool"), Build(t, "keytool")
	if a != b {
		t.Fatalf("two builds in one process: %s and %s", a, b)
	}
	if fi, err := os.Stat(a); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is not an executable: %v", a, err)
	}
}

// TestKeytoolClassify checks the wrapper's parsing on bodies whose libotr
// reading is known from libotr's source (proto.c, message.c).
func TestKeytoolClassify(t *testing.T) {
	bodies := [][]byte{
		[]byte("hello"),
		[]byte("?OTRv23?"),
		[]byte("?OTR Error: x"),
		[]byte("?OTR:AAMDGis8TQAAAQAA."),
		[]byte("?OTR|1a2b3c4d|00000100,00002,00003,piece,"),
		[]byte("?OTR,00001,00002,piece,"),
	}
	want := []Class{
		{Type: "NOTOTR"},
		{Type: "QUERY", Versions: 1<<2 | 1<<3},
		{Type: "ERROR"},
		{Type: "DATA", Version: 3, Sender: 0x1a2b3c4d, Receiver: 0x100},
		{Type: "FRAGMENT", Version: 3, Sender: 0x1a2b3c4d, Receiver: 0x100, K: 2, N: 3},
		{Type: "FRAGMENT", Version: 2, K: 1, N: 2},
	}
	got := Classify(t, bodies)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%q: got %+v, want %+v", bodies[i], got[i], want[i])
		}
	}
}

func TestKeytoolKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "otr.private_key")
	k := GenerateKey(t, file, "op1@example.org", "prpl-jabber")
	if len(k.Fingerprint) != 44 {
		t.Fatalf("fingerprint %q is not libotr's human form", k.Fingerprint)
	}
	ks := ReadKeys(t, file)
	if len(ks) != 1 || ks[0] != k {
		t.Fatalf("ReadKeys = %+v, want [%+v]", ks, k)
	}
	if _, err := ReadKeysErr(t, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("libotr read a missing file")
	}
}
