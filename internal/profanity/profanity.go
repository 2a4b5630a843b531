// Package profanity drives Profanity, the console XMPP client (Debian
// package profanity 0.13, OMEMO built in), as a real operator in
// otrdesk's integration tests: the operator reads and answers a visitor
// with a client that neither otrdesk nor its tests wrote.
//
// Profanity runs in a tmux session of its own (a private server on a
// socket in a temporary directory), with HOME and the XDG directories in
// t.TempDir(), so it reads no configuration and leaves no keys outside
// the test. The test types into it with `tmux send-keys` and reads what a
// person would read with `tmux capture-pane`; readiness is always a line
// on the screen, polled, never a sleep.
//
//	Start: tmux new-session … profanity -l WARN
//	  "Type '/help'"                          the UI is up
//	  /connect JID server HOST port PORT tls trust
//	  "Enter password:" → the password        (never echoed, never logged)
//	  "logged in successfully"
//	  /ping (until it pings) "Ping response from …"   see Start
//	  /omemo gen        "Your Device ID is N."
//	  /omemo clear_device_list                 see below
//	  /omemo fingerprint "Your OMEMO fingerprint: xxxxxxxx-…"
//	  /clear
//	then the test: Cmd("/sub allow …"), Cmd("/msg …"), WaitFor(…), …
//
// Profanity 0.13.1 announces its OMEMO device only when it reads its own
// device list: it asks for the list at login and after /omemo gen, but a
// fresh account has none, and the server's item-not-found (without the
// legacy code='404' that Profanity looks for) makes it give up without
// publishing one. /omemo clear_device_list publishes an empty list; the
// server sends it back as a PEP event, and Profanity, not finding itself
// in it, publishes the list with its own device ("Going to publish own
// device ID"). Start waits for that line.
//
// Profanity's log (XDG_DATA_HOME/profanity/logs/profanity.log) is kept at
// WARN: at DEBUG it holds every line typed ("Input received: …", so the
// operator's messages before they are encrypted) and every stanza sent
// and received (so the bodies of plaintext messages). LogFile names it so
// that tests can check that nothing secret reached it. On a failed test the
// screen and the log's tail are shown.
//
// If the test binary dies without its cleanup (go test -timeout), the
// tmux control client Start keeps attached sees its standard input close
// and exits; the session, marked destroy-unattached, then ends and takes
// Profanity with it.
package profanity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Config names the account Profanity logs in with.
type Config struct {
	JID      string // bare JID of an existing account, user@domain
	Password string
	Host     string // c2s address: 127.0.0.1 for the test servers
	Port     int
	// Timeout bounds each wait for a line on the screen; 30 s if zero.
	Timeout time.Duration
}

// Profanity is one running Profanity, logged in, with OMEMO keys.
type Profanity struct {
	t       testing.TB
	cfg     Config
	tmux    string // path of the tmux binary
	sock    string // the private tmux server's socket
	home    string // HOME; the XDG directories are under it
	control *exec.Cmd
	stdin   io.WriteCloser // the control client's; closing it ends the session

	deviceID    uint32
	fingerprint string // 64 lower-case hex digits
}

// The terminal: wide enough that no line of interest wraps, tall enough
// that a few messages do not scroll the lines a test waits for away.
const (
	cols = 240
	rows = 70
)

// session is the tmux session's name on its private server.
const session = "prof"

// Start runs Profanity for cfg's account, logs in, makes its OMEMO keys and
// publishes its device (see the package comment). Everything it started is
// stopped in t.Cleanup. A missing program fails the test with the Debian
// package to install.
func Start(t testing.TB, cfg Config) *Profanity {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	p := &Profanity{t: t, cfg: cfg, home: t.TempDir()}
	var err error
	if p.tmux, err = lookPath("tmux"); err != nil {
		t.Fatal(err)
	}
	bin, err := lookPath("profanity")
	if err != nil {
		t.Fatal(err)
	}
	// A socket path must fit in sun_path (108 bytes); t.TempDir() may not.
	sockDir, err := os.MkdirTemp("", "profanity-tmux-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	p.sock = filepath.Join(sockDir, "s")
	if err := p.launch(bin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.stop)
	t.Cleanup(p.dumpOnFailure) // runs before stop: the screen is still there

	ctx, cancel := context.WithTimeout(context.Background(), 4*cfg.Timeout)
	defer cancel()
	p.WaitFor(ctx, regexp.MustCompile(`Type '/help'`))
	p.Cmd(fmt.Sprintf("/connect %s server %s port %d tls trust", cfg.JID, cfg.Host, cfg.Port))
	p.WaitFor(ctx, regexp.MustCompile(`Enter password:`))
	p.keys("-l", "--", cfg.Password)
	p.keys("Enter")
	p.WaitFor(ctx, regexp.MustCompile(`(?m)`+regexp.QuoteMeta(cfg.JID)+`/\S+ logged in successfully`))

	// Profanity learns at login, from the server's disco#info, whether
	// it may publish with publish-options (XEP-0060 §7.1.5). Keys made
	// before the answer is in are published without them, so the nodes
	// get the server's default access model, and every later publish,
	// with them, fails with precondition-not-met (ejabberd says conflict;
	// Profanity's attempt to reconfigure the node does not change it),
	// and its device never gets into its device list.
	p.waitServerFeatures(ctx)
	p.Cmd("/omemo gen")
	m := p.WaitFor(ctx, regexp.MustCompile(`Your Device ID is (\d+)\.`))
	id, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil || id == 0 {
		t.Fatalf("profanity: device id %q", m[1])
	}
	p.deviceID = uint32(id)
	p.Cmd("/omemo clear_device_list")
	p.WaitFor(ctx, regexp.MustCompile(`Going to publish own device ID: `+m[1]))
	p.Cmd("/omemo fingerprint")
	m = p.WaitFor(ctx, regexp.MustCompile(`Your OMEMO fingerprint: (`+fingerprintText+`)`))
	if p.fingerprint, err = parseFingerprint(m[1]); err != nil {
		t.Fatal(err)
	}
	// The test starts on an empty console: what it waits for next is new.
	p.Cmd("/clear")
	return p
}

// waitServerFeatures waits until Profanity has the server's disco#info
// answer. Until then /ping says the server does not support ping (both
// test servers do); once it pings, the features are in.
func (p *Profanity) waitServerFeatures(ctx context.Context) {
	p.t.Helper()
	// The answer comes from the server's JID (Prosody) or the account's
	// (ejabberd).
	answer := regexp.MustCompile(`Ping response from \S+: \d+ms|Server does not support ping`)
	for ctx.Err() == nil {
		p.Cmd("/clear") // a refusal left from the previous round is not read again
		p.Cmd("/ping")
		if m := p.WaitFor(ctx, answer); strings.HasPrefix(m[0], "Ping response") {
			return
		}
	}
	p.t.Fatalf("profanity: it never learned the server's features (is ping, XEP-0199, enabled?):\n%s", p.Screen())
}

// launch starts the private tmux server with Profanity in its one window,
// and the control client that keeps the session alive only as long as
// this process lives.
func (p *Profanity) launch(bin string) error {
	conf := filepath.Join(p.home, "tmux.conf")
	// remain-on-exit keeps the screen of a Profanity that crashed.
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o600); err != nil {
		return err
	}
	// window-size manual keeps the size given here whatever client
	// attaches. (tmux 3.3 refuses it in the configuration file read
	// before the first session exists.)
	cmd := exec.Command(p.tmux, "-S", p.sock, "-f", conf,
		"new-session", "-d", "-s", session, "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows),
		bin, "-l", "WARN", ";", "set-option", "-g", "window-size", "manual")
	cmd.Env = p.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("profanity: starting tmux: %w: %s", err, out)
	}
	// The control client: tmux -C reads commands from its standard input
	// and exits at end of file, which the kernel gives it when this
	// process dies, however it dies.
	p.control = exec.Command(p.tmux, "-S", p.sock, "-C", "attach-session", "-t", session)
	p.control.Env = p.env()
	p.control.Stdout = io.Discard
	var err error
	if p.stdin, err = p.control.StdinPipe(); err != nil {
		return err
	}
	if err := p.control.Start(); err != nil {
		return fmt.Errorf("profanity: attaching the tmux control client: %w", err)
	}
	// Only once the control client is attached: setting the option on a
	// session with no client destroys it at once (tmux 3.3a).
	if err := p.waitAttached(); err != nil {
		return err
	}
	return p.tmuxRun("set-option", "-t", session, "destroy-unattached", "on")
}

// waitAttached polls until the session lists a client: the control client
// started in launch attaches in its own time.
func (p *Profanity) waitAttached() error {
	deadline := time.Now().Add(p.cfg.Timeout)
	for {
		out, err := exec.Command(p.tmux, "-S", p.sock, "list-clients", "-t", session).Output()
		if err == nil && len(bytes.TrimSpace(out)) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("profanity: the tmux control client did not attach within %v", p.cfg.Timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// env is Profanity's whole environment: its own HOME and XDG directories,
// a UTF-8 locale, no display (no desktop notifications, no GTK).
func (p *Profanity) env() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + p.home,
		"XDG_CONFIG_HOME=" + filepath.Join(p.home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(p.home, ".local", "share"),
		"XDG_CACHE_HOME=" + filepath.Join(p.home, ".cache"),
		"LANG=C.UTF-8",
		"TERM=xterm-256color",
	}
}

// DeviceID is Profanity's OMEMO device ID.
func (p *Profanity) DeviceID() uint32 { return p.deviceID }

// Fingerprint is the fingerprint of Profanity's OMEMO identity key as it
// shows it, in the form between programs: 64 lower-case hex digits.
func (p *Profanity) Fingerprint() string { return p.fingerprint }

// LogFile is Profanity's log (level WARN: see the package comment).
func (p *Profanity) LogFile() string {
	return filepath.Join(p.home, ".local", "share", "profanity", "logs", "profanity.log")
}

// DataDir is Profanity's data directory: keys, chat logs, its database.
func (p *Profanity) DataDir() string {
	return filepath.Join(p.home, ".local", "share", "profanity")
}

// Cmd types a line into Profanity's input and presses Enter: a command,
// or a message to the contact of the window in front.
func (p *Profanity) Cmd(line string) {
	p.t.Helper()
	p.keys("-l", "--", line)
	p.keys("Enter")
}

func (p *Profanity) keys(args ...string) {
	p.t.Helper()
	if err := p.tmuxRun(append([]string{"send-keys", "-t", session}, args...)...); err != nil {
		p.t.Fatal(err)
	}
}

// Screen is what the terminal shows now, one line per row, without
// trailing spaces.
func (p *Profanity) Screen() string {
	p.t.Helper()
	s, err := p.screen()
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func (p *Profanity) screen() (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(p.tmux, "-S", p.sock, "capture-pane", "-p", "-t", session)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("profanity: reading the screen: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n"), nil
}

// WaitFor polls the screen until re matches it and returns the match and
// its submatches. It fails the test, showing the screen, when ctx ends or
// the configured timeout passes first.
func (p *Profanity) WaitFor(ctx context.Context, re *regexp.Regexp) []string {
	p.t.Helper()
	m, err := p.waitFor(ctx, re)
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

func (p *Profanity) waitFor(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := p.screen()
		if err != nil {
			return nil, err
		}
		if m := re.FindStringSubmatch(s); m != nil {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("profanity: %v waiting for %q on the screen:\n%s", ctx.Err(), re, s)
		case <-tick.C:
		}
	}
}

func (p *Profanity) tmuxRun(args ...string) error {
	out, err := exec.Command(p.tmux, append([]string{"-S", p.sock}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("profanity: tmux %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return nil
}

// dumpOnFailure shows the screen and the tail of Profanity's log when the
// test failed.
func (p *Profanity) dumpOnFailure() {
	if !p.t.Failed() {
		return
	}
	if s, err := p.screen(); err == nil {
		p.t.Logf("profanity screen:\n%s", s)
	}
	if b, err := os.ReadFile(p.LogFile()); err == nil {
		if len(b) > 20000 {
			b = b[len(b)-20000:]
		}
		p.t.Logf("profanity log (tail):\n%s", b)
	}
}

// stop ends the tmux server (and so Profanity) and the control client.
func (p *Profanity) stop() {
	// An error means the server is gone already (Profanity quit and the
	// session ended): nothing left to stop.
	p.tmuxRun("kill-server")
	if p.stdin != nil {
		p.stdin.Close()
	}
	if p.control != nil {
		p.control.Wait()
	}
}

func lookPath(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("profanity: %s not found (install the Debian package: apt-get install %s)", name, name)
	}
	return path, nil
}

// fingerprintText is an OMEMO fingerprint as Profanity shows it: eight
// groups of eight hex digits joined by dashes.
const fingerprintText = `[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{8}){7}`

// parseFingerprint turns a fingerprint as Profanity shows it into 64
// lower-case hex digits.
func parseFingerprint(s string) (string, error) {
	h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" || !regexp.MustCompile(`^`+fingerprintText+`$`).MatchString(s) {
		return "", fmt.Errorf("profanity: %q is not an OMEMO fingerprint as Profanity shows it", s)
	}
	return h, nil
}

// FormatFingerprint writes a fingerprint (64 hex digits) as Profanity
// shows it and as /omemo trust takes it.
func FormatFingerprint(hex64 string) string {
	var b strings.Builder
	for i := 0; i+8 <= len(hex64); i += 8 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(hex64[i : i+8])
	}
	return b.String()
}
