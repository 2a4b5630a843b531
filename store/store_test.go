package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesDirectoryAndFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "otrdesk")
	path := filepath.Join(dir, "otrdesk.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode %v, want 0600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("directory mode %v, want 0700", got)
	}
}

func TestOpenTightensLooseMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, _ := os.Stat(path)
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode after reopening a 0644 file: %v, want 0600", got)
	}

	// A file Open refuses keeps its mode.
	other := writeFile(t, []byte("some notes"))
	if err := os.Chmod(other, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(other); !errors.Is(err, ErrNotStore) {
		t.Fatalf("Open of a text file: %v", err)
	}
	if fi, _ := os.Stat(other); fi.Mode().Perm() != 0o644 {
		t.Errorf("refused file's mode changed to %v", fi.Mode().Perm())
	}
}

// TestOpenUpToDateDoesNotWrite: opening a current store (otrdesk skin list)
// leaves the file byte for byte as it was.
func TestOpenUpToDateDoesNotWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSkin(demoSkin()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Skins(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if !bytesEqualFile(t, path, before) {
		t.Fatal("opening and reading an up-to-date store changed the file")
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	g := demoGuest(NewGuestID())
	if err := s.CreateSkin(demoSkin()); err != nil {
		t.Fatal(err)
	}
	if err := s.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	got, err := s.GuestByRealJID(g.Skin, g.RealJID)
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("guest after reopen = %+v, %v; want %+v", got, err, g)
	}
	if _, err := s.Skin("demo"); err != nil {
		t.Fatalf("skin after reopen: %v", err)
	}
}

// TestOpenInUse: bbolt's flock is per open file description, so a second
// Open of the same file in the same process is refused like another
// process would be, after the one-second timeout and with the exact text.
func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(path)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	const want = "store: the store is in use by another process (is otrdesk serve running?)"
	if err.Error() != want {
		t.Fatalf("second Open error text %q, want %q", err, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open after the first Close: %v", err)
	}
	s.Close()
}

const holdEnv = "OTRDESK_STORE_TEST_HOLD"

// TestHelperHoldStore is not a test: run as a child process with holdEnv
// set, it holds the store open until its stdin closes.
func TestHelperHoldStore(t *testing.T) {
	path := os.Getenv(holdEnv)
	if path == "" {
		t.Skip("helper process for TestOpenInUseByAnotherProcess")
	}
	s, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	os.Exit(0)
}

func TestOpenInUseByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldStore$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "held\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	_, err = Open(path)
	if !errors.Is(err, ErrInUse) || err.Error() != ErrInUse.Error() {
		t.Fatalf("Open while another process holds the store: %v, want ErrInUse", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open after the other process ended: %v", err)
	}
	s.Close()
}

// makeDB writes a bbolt file by hand, as an older or foreign program would.
func makeDB(t *testing.T, fn func(tx *bolt.Tx) error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func setVersion(v uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, encodeVersion(v))
	}
}

func readVersion(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint64
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = schemaVersion(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOpenTooNew(t *testing.T) {
	newer := SchemaVersion() + 1
	path := makeDB(t, setVersion(newer))
	_, err := Open(path)
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("Open: %v, want ErrTooNew", err)
	}
	want := fmt.Sprintf("store: database schema version %d is newer than this otrdesk (%d); upgrade otrdesk", newer, SchemaVersion())
	if err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
	if v := readVersion(t, path); v != newer {
		t.Fatalf("refused database now has version %d, want it untouched at %d", v, newer)
	}
}

func TestOpenNotAStore(t *testing.T) {
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name     string
		make     func(t *testing.T) string
		sentinel error
		substr   string
	}{
		{"text file", func(t *testing.T) string {
			return writeFile(t, []byte("[component]\ndomain = \"chat.example.org\"\n"))
		}, ErrNotStore, "is not an otrdesk store (not a bbolt database: invalid database)"},
		{"large garbage", func(t *testing.T) string { return writeFile(t, big) }, ErrNotStore, "not a bbolt database"},
		{"truncated copy", func(t *testing.T) string {
			full := storeBytes(t)
			return writeFile(t, full[:len(full)/2])
		}, ErrCorrupt, "truncated: the file is"},
		{"foreign bbolt database", func(t *testing.T) string {
			return makeDB(t, func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err })
		}, ErrNotStore, `without otrdesk's meta bucket; it has a bucket named "widgets"`},
		{"damaged version", func(t *testing.T) string {
			return makeDB(t, func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				return b.Put(keyVersion, []byte{1})
			})
		}, ErrNotStore, "schema version is 1 bytes, want 8"},
		{"directory", func(t *testing.T) string { return t.TempDir() }, ErrInvalid, "is a directory: set store.path to a file inside it"},
		{"empty path", func(t *testing.T) string { return "" }, ErrInvalid, "set store.path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.make(t)
			var before []byte
			if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
				before, _ = os.ReadFile(path)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			wantErr(t, err, tt.sentinel, tt.substr)
			if before != nil {
				after, _ := os.ReadFile(path)
				if !bytes.Equal(before, after) {
					t.Fatal("Open changed a file it refused")
				}
			}
		})
	}
}

// storeBytes returns the bytes of a small store with one skin.
func storeBytes(t testing.TB) []byte {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateSkin(demoSkin()); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "otrdesk.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBackup copies the store while other goroutines write to it and checks
// that Open reads the copy with the same data.
func TestBackup(t *testing.T) {
	s, _ := newStore(t)
	sk := demoSkin()
	sk.Keys = []SkinKey{testKey(1, t0)}
	if err := s.CreateSkin(sk); err != nil {
		t.Fatal(err)
	}
	if err := s.PutOperator(Operator{JID: "alice@example.org", OnDuty: true, Nick: "Alice"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordChat(ChatRecord{Skin: "demo", Start: t0, Wait: time.Second, Duration: time.Minute, Encrypted: true}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		g := demoGuest(NewGuestID())
		g.RealJID = fmt.Sprintf("v%d@guest.example.org/r", i)
		if err := s.PutGuest(g); err != nil {
			t.Fatal(err)
		}
	}

	// Writers keep going during the backup.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				g := demoGuest(NewGuestID())
				g.RealJID = fmt.Sprintf("w%d-%d@guest.example.org/r", w, i)
				if err := s.PutGuest(g); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("Backup returned %d, wrote %d bytes", n, buf.Len())
	}

	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatalf("Open backup: %v", err)
	}
	defer c.Close()

	for _, check := range []struct {
		name string
		get  func(*Store) (any, error)
	}{
		{"skins", func(s *Store) (any, error) { return s.Skins() }},
		{"operators", func(s *Store) (any, error) { return s.Operators() }},
		{"stats", func(s *Store) (any, error) { return s.Stats("demo", time.Time{}) }},
	} {
		a, errA := check.get(s)
		b, errB := check.get(c)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s differ: %+v (%v) vs backup %+v (%v)", check.name, a, errA, b, errB)
		}
	}
	guests, err := c.Guests()
	if err != nil || len(guests) < 50 {
		t.Fatalf("backup has %d guests, %v; want at least the 50 from before", len(guests), err)
	}
	for _, g := range guests {
		orig, err := s.Guest(g.ID)
		if err != nil || !reflect.DeepEqual(orig, g) {
			t.Fatalf("backup guest %+v differs from %+v (%v)", g, orig, err)
		}
	}
	checkIndex(t, c)
}

func TestPing(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(); err != nil {
		t.Fatalf("Ping on an open store: %v", err)
	}
	s.Close()
	err = s.Ping()
	if err == nil || !strings.HasPrefix(err.Error(), "store: ping: ") {
		t.Fatalf("Ping on a closed store: %v, want a store: ping: error", err)
	}
}
