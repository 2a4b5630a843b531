// Package libotrtest runs real libotr 4.1.1 (Debian libotr5-dev) beside
// otrdesk's own OTR implementation in tests.
//
// The libotr side is small C programs under c/, embedded in this package
// and compiled with gcc by Build, once per source and flags (the binary is
// cached in the system temporary directory under a name derived from a hash
// of both, so parallel test processes share it safely). Each program has a
// Go file of typed wrappers:
//
//   - keytool (c/keytool.c, keytool.go): libotr's key, instance-tag and
//     fingerprint files, its message classification and fragment
//     reassembly, and a recorded AKE with data messages between two libotr
//     instances (Record).
//   - peer (c/peer.c, peer.go): a libotr conversation partner driven over
//     pipes, for the tests of otr's conversation engine.
//
// Nothing here is used outside tests. A machine without gcc or libotr5-dev
// fails the test with a message naming the Debian package.
package libotrtest

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

//go:embed c/*.c
var sources embed.FS

var buildMu sync.Mutex

// Build compiles c/NAME.c against libotr and returns the path of the
// program. It fails t when gcc or libotr is missing or the source does not
// compile.
func Build(t testing.TB, name string) string {
	t.Helper()
	src, err := sources.ReadFile("c/" + name + ".c")
	if err != nil {
		t.Fatalf("libotrtest: no C source c/%s.c: %v", name, err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("libotrtest: gcc not found: install the Debian package gcc")
	}
	flags := libotrFlags(t)
	h := sha256.New()
	h.Write(src)
	h.Write([]byte(strings.Join(flags, " ")))
	dir := filepath.Join(os.TempDir(), "otrdesk-libotrtest-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	// Another test process may be building the same program: write the
	// source and the binary under names of our own and rename at the end.
	srcTmp, err := os.CreateTemp(dir, name+"-*.c")
	if err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	srcFile := srcTmp.Name()
	defer os.Remove(srcFile)
	_, err = srcTmp.Write(src)
	if cerr := srcTmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append([]string{"-O2", "-Wall", "-o", tmp.Name(), srcFile}, flags...)
	var out bytes.Buffer
	cmd := exec.Command(gcc, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("libotrtest: compiling %s.c: %v\n%s", name, err, out.Bytes())
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	return bin
}

// libotrFlags returns the compiler and linker flags for libotr and the
// libgcrypt it is built on.
func libotrFlags(t testing.TB) []string {
	if _, err := os.Stat("/usr/include/libotr/proto.h"); err != nil {
		if out, err := exec.Command("pkg-config", "--exists", "libotr").CombinedOutput(); err != nil {
			t.Fatalf("libotrtest: libotr headers not found (%s): install the Debian package libotr5-dev", out)
		}
	}
	flags := []string{"-lotr"}
	if out, err := exec.Command("pkg-config", "--cflags", "--libs", "libotr").Output(); err == nil {
		flags = strings.Fields(string(out))
	}
	return append(flags, "-lgcrypt", "-lgpg-error")
}
