package libotrtest

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// libotr's policy bits (libotr/proto.h), for PeerConfig.Policy.
const (
	PolicyAllowV1            = 0x01
	PolicyAllowV2            = 0x02
	PolicyAllowV3            = 0x04
	PolicyRequireEncryption  = 0x08
	PolicySendWhitespaceTag  = 0x10
	PolicyWhitespaceStartAKE = 0x20
	PolicyErrorStartAKE      = 0x40
	// PolicyDefault is libotr's OTRL_POLICY_DEFAULT (opportunistic, v2 and v3).
	PolicyDefault = PolicyAllowV2 | PolicyAllowV3 | PolicySendWhitespaceTag | PolicyWhitespaceStartAKE | PolicyErrorStartAKE
)

// PeerConfig configures a libotr peer process.
type PeerConfig struct {
	Account  string // our account (default "libotr@example.org")
	PeerName string // the account we talk to (default "go@example.org")
	// KeyFile is libotr's private key file; a key is generated into it
	// when it holds none for Account. Two peers sharing a KeyFile and
	// Account are one account logged in twice. Default: a new file in
	// Dir.
	KeyFile string
	Dir     string // for the instance-tag file and default key file; default t.TempDir()
	// InstanceTagFile is libotr's instance-tag file; a tag is generated
	// into it when it holds none. A restarted client reuses its file and
	// so its tag. Default: a new file in Dir (a new tag).
	InstanceTagFile string
	Policy          uint32 // libotr policy bits; 0 means PolicyDefault
	MaxSize         int    // libotr max_message_size; 0 never fragments
}

// Peer is an OTR peer run by real libotr 4.1.1 in a child process
// (c/peer.c), driven command by command over pipes. It is not safe for
// concurrent use.
type Peer struct {
	t           testing.TB
	cmd         *exec.Cmd
	in          io.WriteCloser
	out         *bufio.Reader
	tag         uint32
	fingerprint [20]byte
}

// Reply is what libotr did in answer to one command.
type Reply struct {
	Out    [][]byte // messages for the other side, in order
	Shown  []Shown  // messages for the user
	Events []string // every other output line, e.g. "secure 1a2b3c4d 3 <fp>", "smp success 1a2b3c4d 100"
}

// Shown is a message libotr handed to the user.
type Shown struct {
	Instance uint32 // the sender's instance tag (0 when none)
	Text     []byte
}

// Has reports whether an event line starts with prefix.
func (r Reply) Has(prefix string) bool {
	for _, e := range r.Events {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

// StartPeer builds and starts a libotr peer; it is stopped when the test
// ends.
func StartPeer(t testing.TB, cfg PeerConfig) *Peer {
	t.Helper()
	bin := Build(t, "peer")
	if cfg.Account == "" {
		cfg.Account = "libotr@example.org"
	}
	if cfg.PeerName == "" {
		cfg.PeerName = "go@example.org"
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.KeyFile == "" {
		cfg.KeyFile = filepath.Join(cfg.Dir, "otr.private_key")
	}
	if cfg.Policy == 0 {
		cfg.Policy = PolicyDefault
	}
	instag := cfg.InstanceTagFile
	if instag == "" {
		instag = tempName(cfg.Dir, "otr.instance_tags")
	}
	cmd := exec.Command(bin, cfg.Account, cfg.PeerName, cfg.KeyFile, instag,
		fmt.Sprintf("%#x", cfg.Policy), strconv.Itoa(cfg.MaxSize))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("libotrtest: %v", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("libotrtest: starting peer: %v", err)
	}
	p := &Peer{t: t, cmd: cmd, in: in, out: bufio.NewReaderSize(stdout, 1<<20)}
	t.Cleanup(func() {
		io.WriteString(p.in, "quit\n")
		p.in.Close()
		p.cmd.Wait()
	})
	line, err := p.out.ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "ready" {
		t.Fatalf("libotrtest: peer did not start: %q %v %s", line, err, stderr.String())
	}
	tag, _ := strconv.ParseUint(f[1], 16, 32)
	p.tag = uint32(tag)
	if _, err := hex.Decode(p.fingerprint[:], []byte(f[2])); err != nil {
		t.Fatalf("libotrtest: peer fingerprint %q: %v", f[2], err)
	}
	return p
}

var (
	tempMu  sync.Mutex
	tempSeq int
)

func tempName(dir, base string) string {
	tempMu.Lock()
	defer tempMu.Unlock()
	tempSeq++
	return filepath.Join(dir, fmt.Sprintf("%s.%d", base, tempSeq))
}

// InstanceTag returns the peer's own instance tag.
func (p *Peer) InstanceTag() uint32 { return p.tag }

// Fingerprint returns the peer's key fingerprint.
func (p *Peer) Fingerprint() [20]byte { return p.fingerprint }

// Do runs one command line and collects its output.
func (p *Peer) Do(cmd string) Reply {
	p.t.Helper()
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		p.t.Fatalf("libotrtest: writing to peer: %v", err)
	}
	var r Reply
	for {
		line, err := p.out.ReadString('\n')
		if err != nil {
			p.t.Fatalf("libotrtest: peer died during %q: %v", firstWord(cmd), err)
		}
		line = strings.TrimSuffix(line, "\n")
		f := strings.Fields(line)
		switch {
		case line == "done":
			return r
		case len(f) == 2 && f[0] == "out":
			r.Out = append(r.Out, unhex(p.t, f[1]))
		case len(f) == 3 && f[0] == "show":
			tag, _ := strconv.ParseUint(f[1], 16, 32)
			r.Shown = append(r.Shown, Shown{Instance: uint32(tag), Text: unhex(p.t, f[2])})
		default:
			r.Events = append(r.Events, line)
		}
	}
}

func firstWord(s string) string {
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

func unhex(t testing.TB, s string) []byte {
	if s == "-" {
		return []byte{}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("libotrtest: bad hex from peer: %v", err)
	}
	return b
}

func hx(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

func tagArg(tag uint32) string {
	if tag == 0 {
		return "best"
	}
	return fmt.Sprintf("%08x", tag)
}

// Query makes libotr send its OTR query message.
func (p *Peer) Query() Reply { return p.Do("query") }

// Send has libotr send what the user typed to its best instance.
func (p *Peer) Send(msg []byte) Reply { return p.Do("send " + hx(msg)) }

// SendTo has libotr send what the user typed to one instance of the peer.
func (p *Peer) SendTo(tag uint32, msg []byte) Reply {
	return p.Do("sendto " + tagArg(tag) + " " + hx(msg))
}

// Receive hands libotr a message from the other side.
func (p *Peer) Receive(msg []byte) Reply { return p.Do("recv " + hx(msg)) }

// SMP starts SMP with the instance tag (0: best), with an optional question.
func (p *Peer) SMP(tag uint32, question string, secret []byte) Reply {
	return p.Do("smp " + tagArg(tag) + " " + hx([]byte(question)) + " " + hx(secret))
}

// SMPRespond answers the peer's SMP with our secret.
func (p *Peer) SMPRespond(tag uint32, secret []byte) Reply {
	return p.Do("smprespond " + tagArg(tag) + " " + hx(secret))
}

// Disconnect ends the encrypted session with the instance tag (0: best).
func (p *Peer) Disconnect(tag uint32) Reply { return p.Do("disconnect " + tagArg(tag)) }

// State returns libotr's message state (0 plaintext, 1 encrypted, 2
// finished) and protocol version for the instance tag (0: best).
func (p *Peer) State(tag uint32) (msgstate, version int) {
	p.t.Helper()
	r := p.Do("state " + tagArg(tag))
	for _, e := range r.Events {
		f := strings.Fields(e)
		if len(f) == 4 && f[0] == "state" {
			msgstate, _ = strconv.Atoi(f[2])
			version, _ = strconv.Atoi(f[3])
			return msgstate, version
		}
	}
	p.t.Fatalf("libotrtest: no state for instance %s: %v", tagArg(tag), r.Events)
	return 0, 0
}

// BenchResult is the time per operation of a Bench run: wall clock and
// the process's CPU time (the fair measure on a shared, loaded machine).
type BenchResult struct {
	Wall, CPU time.Duration
}

// Bench runs an in-process libotr-to-libotr benchmark in the peer program
// and returns the time per operation: "ake" (a full AKE, both sides),
// "data" (a size-byte message each way), "smp" (a full SMP, both sides),
// "keygen" (one DSA key).
func Bench(t testing.TB, what string, n, size int) BenchResult {
	t.Helper()
	bin := Build(t, "peer")
	out, err := exec.Command(bin, "bench", what, strconv.Itoa(n), strconv.Itoa(size)).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) != 3 || f[0] != "bench" {
		t.Fatalf("libotrtest: bench %s: %q %v", what, out, err)
	}
	wall, err1 := strconv.ParseFloat(f[1], 64)
	cpu, err2 := strconv.ParseFloat(f[2], 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("libotrtest: bench %s: %q", what, out)
	}
	return BenchResult{Wall: time.Duration(wall), CPU: time.Duration(cpu)}
}
