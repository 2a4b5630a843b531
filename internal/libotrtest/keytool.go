package libotrtest

import (
	"bytes"
	"encoding/hex"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Key is one private key as libotr reports it.
type Key struct {
	Account, Protocol string
	Fingerprint       string // libotr's human form: five groups of eight upper-case hex digits
}

// Class is libotr's classification of one body: the message type name of
// otrl_proto_message_type ("NOTOTR", "TAGGEDPLAINTEXT", "QUERY",
// "DH_COMMIT", "DH_KEY", "REVEALSIG", "SIGNATURE", "V1_KEYEXCH", "DATA",
// "ERROR", "UNKNOWN") or "FRAGMENT"; the version of
// otrl_proto_message_version (or the fragment's); the instance tags libotr
// reads (otrl_proto_instance, or the fragment header; 0xffffffff when
// otrl_proto_instance fails); a fragment's k and n; and for a query or
// tagged plaintext the versions offered as bits 1<<v, as
// otrl_proto_query_bestversion and otrl_proto_whitespace_bestversion find
// them.
type Class struct {
	Type             string
	Version          int
	Sender, Receiver uint32
	K, N             int
	Versions         uint8
}

// Event is one line of a Record.
type Event struct {
	// What: "QUERY" (libotr's default query message), "WIRE" (a message
	// injected onto the wire), "SENT" (what otrl_message_sending produced,
	// before fragmenting), "JOINED" (a message libotr's
	// otrl_proto_fragment_accumulate completed at the receiver), "SHOWN"
	// (what the receiver's otrl_message_receiving gave the user).
	What     string
	From, To string // account names; To is empty for SENT
	Body     []byte
	Class    Class // for QUERY, WIRE and JOINED
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	return runInput(t, nil, args...)
}

func runInput(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(Build(t, "keytool"), args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("libotrtest: keytool %s: %v: %s", args[0], err, stderr.Bytes())
	}
	return string(out)
}

// runErr runs keytool and returns libotr's error text instead of failing.
func runErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Build(t, "keytool"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.String(), err
	}
	return string(out), nil
}

func lines(out, prefix string) [][]string {
	var recs [][]string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		if f[0] == prefix {
			recs = append(recs, f[1:])
		}
	}
	return recs
}

func keys(out string) []Key {
	var ks []Key
	for _, f := range lines(out, "KEY") {
		ks = append(ks, Key{Account: f[0], Protocol: f[1], Fingerprint: f[2]})
	}
	return ks
}

// ReadKeys has libotr read the otr.private_key file (otrl_privkey_read) and
// returns the fingerprint libotr computes for each key
// (otrl_privkey_fingerprint). It fails t when libotr refuses the file.
func ReadKeys(t testing.TB, file string) []Key {
	t.Helper()
	return keys(run(t, "fingerprint", file))
}

// ReadKeysErr is ReadKeys returning libotr's refusal as an error.
func ReadKeysErr(t testing.TB, file string) ([]Key, error) {
	t.Helper()
	out, err := runErr(t, "fingerprint", file)
	if err != nil {
		return nil, &libotrError{out}
	}
	return keys(out), nil
}

type libotrError struct{ text string }

func (e *libotrError) Error() string { return strings.TrimSpace(e.text) }

// ReadKeysMany is ReadKeys for many files in one process: for each file,
// the keys libotr read, or libotr's refusal.
func ReadKeysMany(t testing.TB, files []string) (keys [][]Key, errs []error) {
	t.Helper()
	out := runInput(t, []byte(strings.Join(files, "\n")+"\n"), "fingerprint-many")
	keys, errs = make([][]Key, len(files)), make([]error, len(files))
	i := -1
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		switch f[0] {
		case "FILE":
			i++
			if i >= len(files) || f[1] != files[i] {
				t.Fatalf("libotrtest: fingerprint-many answered %q out of order", l)
			}
		case "KEY":
			keys[i] = append(keys[i], Key{Account: f[1], Protocol: f[2], Fingerprint: f[3]})
		case "ERR":
			errs[i] = &libotrError{f[1]}
		}
	}
	if i != len(files)-1 {
		t.Fatalf("libotrtest: fingerprint-many answered %d of %d files", i+1, len(files))
	}
	return keys, errs
}

// GenerateKey has libotr add a new key for account and protocol to the
// otr.private_key file (otrl_privkey_read, then otrl_privkey_generate, which
// rewrites the file with every key) and returns it.
func GenerateKey(t testing.TB, file, account, protocol string) Key {
	t.Helper()
	ks := keys(run(t, "generate", file, account, protocol))
	if len(ks) != 1 {
		t.Fatalf("libotrtest: generate printed %d keys", len(ks))
	}
	return ks[0]
}

// GenerateKeys has libotr generate n DSA keys in one process
// (otrl_privkey_generate_calculate) and returns the time libotr spent.
func GenerateKeys(t testing.TB, n int) time.Duration {
	t.Helper()
	recs := lines(run(t, "genbench", strconv.Itoa(n)), "NS")
	if len(recs) != 1 {
		t.Fatal("libotrtest: genbench printed no time")
	}
	ns, err := strconv.ParseInt(recs[0][0], 10, 64)
	if err != nil {
		t.Fatalf("libotrtest: genbench: %v", err)
	}
	return time.Duration(ns)
}

// InstanceTag is one entry of libotr's instance-tag file.
type InstanceTag struct {
	Account, Protocol string
	Tag               uint32
}

func instags(t testing.TB, out string) []InstanceTag {
	var tags []InstanceTag
	for _, f := range lines(out, "INSTAG") {
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			t.Fatalf("libotrtest: instance tag %q: %v", f[2], err)
		}
		tags = append(tags, InstanceTag{Account: f[0], Protocol: f[1], Tag: uint32(v)})
	}
	return tags
}

// ReadInstanceTags has libotr read an instance-tag file (otrl_instag_read)
// and returns the tags it kept.
func ReadInstanceTags(t testing.TB, file string) []InstanceTag {
	t.Helper()
	return instags(t, run(t, "instags", file))
}

// GenerateInstanceTag has libotr read file, add a new tag for account and
// protocol (otrl_instag_generate, which rewrites the file) and returns
// every tag in it.
func GenerateInstanceTag(t testing.TB, file, account, protocol string) []InstanceTag {
	t.Helper()
	return instags(t, run(t, "instag-generate", file, account, protocol))
}

// KnownFingerprint is one entry of libotr's fingerprints file.
type KnownFingerprint struct {
	Username, Account, Protocol string
	Hex                         string // 40 lower-case hex digits
	Trust                       string
}

// ReadFingerprints has libotr read the fingerprints file in
// (otrl_privkey_read_fingerprints), returns what it kept, and has libotr
// write it back to out (otrl_privkey_write_fingerprints).
func ReadFingerprints(t testing.TB, in, out string) []KnownFingerprint {
	t.Helper()
	var fs []KnownFingerprint
	for _, f := range lines(run(t, "fingerprints", in, out), "FPR") {
		fs = append(fs, KnownFingerprint{Username: f[0], Account: f[1], Protocol: f[2], Hex: f[3], Trust: f[4]})
	}
	return fs
}

func parseClass(t testing.TB, f []string) Class {
	if len(f) < 7 {
		t.Fatalf("libotrtest: short classification %q", f)
	}
	bits, err := strconv.ParseUint(f[6], 10, 8)
	if err != nil {
		t.Fatalf("libotrtest: classification %q: %v", f, err)
	}
	v, _ := strconv.Atoi(f[1])
	from, err1 := strconv.ParseUint(f[2], 16, 32)
	to, err2 := strconv.ParseUint(f[3], 16, 32)
	k, err3 := strconv.Atoi(f[4])
	n, err4 := strconv.Atoi(f[5])
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatalf("libotrtest: classification %q: %v", f, err)
		}
	}
	return Class{Type: f[0], Version: v, Sender: uint32(from), Receiver: uint32(to), K: k, N: n, Versions: uint8(bits)}
}

// Classify returns libotr's classification of each body. Bodies must not
// contain NUL bytes (libotr takes C strings).
func Classify(t testing.TB, bodies [][]byte) []Class {
	t.Helper()
	var in bytes.Buffer
	for _, b := range bodies {
		in.WriteString(hex.EncodeToString(b))
		in.WriteByte('\n')
	}
	recs := lines(runInput(t, in.Bytes(), "classify"), "CLASS")
	if len(recs) != len(bodies) {
		t.Fatalf("libotrtest: classify answered %d of %d bodies", len(recs), len(bodies))
	}
	cs := make([]Class, len(recs))
	for i, f := range recs {
		cs[i] = parseClass(t, f)
	}
	return cs
}

// Accumulate feeds each sequence of bodies to libotr's
// otrl_proto_fragment_accumulate on a fresh context and returns, for every
// body, the message it completed or nil.
func Accumulate(t testing.TB, seqs [][][]byte) [][][]byte {
	t.Helper()
	var in bytes.Buffer
	for _, seq := range seqs {
		in.WriteByte('\n')
		for _, b := range seq {
			in.WriteString(hex.EncodeToString(b))
			in.WriteByte('\n')
		}
	}
	recs := lines(runInput(t, in.Bytes(), "accumulate"), "ACC")
	out := make([][][]byte, len(seqs))
	i := 0
	for s, seq := range seqs {
		out[s] = make([][]byte, len(seq))
		for j := range seq {
			if i >= len(recs) {
				t.Fatalf("libotrtest: accumulate answered %d bodies", len(recs))
			}
			if recs[i][0] == "COMPLETE" {
				msg, err := hex.DecodeString(recs[i][1])
				if err != nil {
					t.Fatalf("libotrtest: accumulate: %v", err)
				}
				out[s][j] = msg
			}
			i++
		}
	}
	return out
}

// Record runs two libotr instances, alice@example.org and
// bob@example.org, both with libotr's OPPORTUNISTIC policy (OTR version 3) and the maximum
// message size maxSize (0 for none), reading their keys from keyFile (an
// otr.private_key holding a key for each, protocol prpl-jabber). Alice
// sends tagged plaintext, bob starts the AKE, both send short and long
// messages, bob forgets the session so that a new AKE runs, and bob ends
// with a disconnect. It returns every event in order.
func Record(t testing.TB, keyFile string, maxSize int) []Event {
	t.Helper()
	return RecordVersion(t, keyFile, maxSize, 3)
}

// RecordVersion is Record with both sides allowing only OTR version 2
// when version is 2.
func RecordVersion(t testing.TB, keyFile string, maxSize, version int) []Event {
	t.Helper()
	out := run(t, "record", strconv.Itoa(maxSize), keyFile, strconv.Itoa(version))
	var evs []Event
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "\t")
		var ev Event
		var err error
		switch f[0] {
		case "QUERY":
			ev = Event{What: f[0]}
			ev.Body, err = hex.DecodeString(f[1])
			ev.Class = parseClass(t, f[2:])
		case "WIRE":
			ev = Event{What: f[0], From: f[1], To: f[2]}
			ev.Body, err = hex.DecodeString(f[3])
			ev.Class = parseClass(t, f[4:])
		case "JOINED":
			ev = Event{What: f[0], To: f[1]}
			ev.Body, err = hex.DecodeString(f[2])
			ev.Class = parseClass(t, f[3:])
		case "SENT", "SHOWN":
			ev = Event{What: f[0], From: f[1]}
			if f[0] == "SHOWN" {
				ev = Event{What: f[0], To: f[1]}
			}
			ev.Body, err = hex.DecodeString(f[2])
		default:
			continue
		}
		if err != nil {
			t.Fatalf("libotrtest: record line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}
