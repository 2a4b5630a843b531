package xmpptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ejabberdUser is the system user Debian's ejabberdctl runs the VM as.
const ejabberdUser = "ejabberd"

// ejabberd runs Debian's ejabberd 23.01 through ejabberdctl, which (started
// as root) runs the Erlang VM as the ejabberd user with su, in a session of
// its own. The instance directory is therefore made under the system temp
// directory and handed to that user.
type ejabberd struct {
	ctl      string
	dir      string // config dir: ejabberd.yml, ejabberdctl.cfg, inetrc
	node     string
	distPort int
	apiURL   string // http://127.0.0.1:PORT/api

	watchdog     *exec.Cmd // stops the VM if this process dies; see startWatchdog
	watchdogPipe *os.File
}

// StartEjabberd starts a private ejabberd on loopback and waits until it
// serves c2s, components and BOSH. Close stops it, Erlang VM included.
//
// Erlang stays on 127.0.0.1 without epmd: ejabberdctl.cfg sets
// ERL_DIST_PORT (a free port), so the node listens for distribution on that
// port only and ejabberdctl's control nodes connect to it directly; the
// cookie is random per instance.
func StartEjabberd(ctx context.Context, opts Options) (*Server, error) {
	ctl, err := lookPath("ejabberdctl", "ejabberd")
	if err != nil {
		return nil, err
	}
	u, err := user.Lookup(ejabberdUser)
	if err != nil {
		return nil, fmt.Errorf("%w: no %s user (install the Debian package: apt-get install ejabberd)", ErrNotInstalled, ejabberdUser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return startWithRetry(func() (*Server, error) { return startEjabberd(ctx, opts, ctl, uid, gid) })
}

func startEjabberd(ctx context.Context, opts Options, ctl string, uid, gid int) (*Server, error) {
	if opts.Dir != "" {
		if err := reachable(opts.Dir, uid); err != nil {
			return nil, err
		}
	}
	s, data, err := newServer("ejabberd", opts, 0o750)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		s.cleanupDir()
		return nil, err
	}
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("xmpptest: generating node name: %w", err)
	}
	e := &ejabberd{
		ctl:      ctl,
		dir:      s.Dir,
		node:     "xmpptest-" + hex.EncodeToString(rnd[:4]) + "@localhost",
		distPort: ports[0],
		apiURL:   strings.TrimSuffix(s.BOSHURL, "/http-bind") + "/api",
	}
	s.backend = e
	s.readyLine = "is started in the node '" + e.node + "'"
	becomeSubreaper()
	s.LogFile = filepath.Join(s.Dir, "logs", "ejabberd.log")
	if err := e.writeFiles(data, hex.EncodeToString(rnd[4:]), uid, gid); err != nil {
		s.cleanupDir()
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		s.cleanupDir()
		return nil, err
	}
	return s, nil
}

// reachable checks that every existing ancestor of dir can be traversed by
// uid: ejabberd runs as its own user (t.TempDir's parents are mode 0700).
func reachable(dir string, uid int) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("xmpptest: instance directory: %w", err)
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err == nil {
			st, ok := fi.Sys().(*syscall.Stat_t)
			if fi.Mode().Perm()&0o001 == 0 && (!ok || int(st.Uid) != uid) {
				return fmt.Errorf("xmpptest: the %s user cannot reach %s (%s is mode %v); leave Options.Dir empty for ejabberd", ejabberdUser, abs, p, fi.Mode().Perm())
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (e *ejabberd) writeFiles(data templateData, cookie string, uid, gid int) error {
	cfg, err := renderTemplate("ejabberd.yml.tmpl", data)
	if err != nil {
		return err
	}
	ctlcfg := strings.Join([]string{
		"# ejabberdctl settings of a private xmpptest instance.",
		"ERLANG_NODE=" + e.node,
		"# Distribution on one loopback port, no epmd, a random cookie.",
		"ERL_DIST_PORT=" + strconv.Itoa(e.distPort),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		`ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 -setcookie ` + cookie + ` -kernel inet_dist_use_interface {127,0,0,1}"`,
		"EJABBERD_PID_PATH=" + e.pidFile(),
		"EJABBERD_BYPASS_WARNINGS=true",
		"",
	}, "\n")
	inetrc := "{lookup,[\"file\",\"native\"]}.\n{host,{127,0,0,1}, [\"localhost\"]}.\n"
	files := map[string]string{
		"ejabberd.yml":    string(cfg),
		"ejabberdctl.cfg": ctlcfg,
		"inetrc":          inetrc,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(content), 0o640); err != nil {
			return fmt.Errorf("xmpptest: writing %s: %w", name, err)
		}
	}
	for _, d := range []string{"logs", "db"} {
		// A new node name needs a new Mnesia database.
		if err := os.RemoveAll(filepath.Join(e.dir, d)); err != nil {
			return fmt.Errorf("xmpptest: clearing %s: %w", d, err)
		}
		if err := os.MkdirAll(filepath.Join(e.dir, d), 0o750); err != nil {
			return fmt.Errorf("xmpptest: making %s: %w", d, err)
		}
	}
	// The VM runs as the ejabberd user: hand it the whole instance.
	err = filepath.WalkDir(e.dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("xmpptest: handing the instance to the %s user: %w", ejabberdUser, err)
	}
	return nil
}

func (e *ejabberd) args(cmd ...string) []string {
	return append([]string{"--config-dir", e.dir, "--logs", filepath.Join(e.dir, "logs"), "--spool", filepath.Join(e.dir, "db")}, cmd...)
}

func (e *ejabberd) command() (*exec.Cmd, error) {
	// The VM writes its pid at start; a stale one must never be signalled.
	if err := os.Remove(e.pidFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("xmpptest: removing old ejabberd pid file: %w", err)
	}
	if err := e.startWatchdog(); err != nil {
		return nil, err
	}
	cmd := exec.Command(e.ctl, e.args("foreground")...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "ERL_EPMD_ADDRESS=127.0.0.1")
	cmd.SysProcAttr = childAttr()
	return cmd, nil
}

// startWatchdog starts a shell that stops the VM when this process dies
// without stopping it (a test binary killed by -timeout, say): the VM runs
// in a session of its own as another user, so neither our process group
// nor Pdeathsig reach it. The shell waits for EOF on a pipe whose only
// writer is this process, which the kernel closes when the process dies.
// A normal stop kills the watchdog first.
func (e *ejabberd) startWatchdog() error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("xmpptest: ejabberd watchdog: %w", err)
	}
	script := `read _ || pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -TERM "$pid"`
	cmd := exec.Command("/bin/sh", "-c", script, "xmpptest-watchdog", e.pidFile())
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return fmt.Errorf("xmpptest: ejabberd watchdog: %w", err)
	}
	r.Close()
	e.watchdog, e.watchdogPipe = cmd, w
	return nil
}

func (e *ejabberd) stopWatchdog() {
	if e.watchdog == nil {
		return
	}
	_ = e.watchdog.Process.Kill()
	_ = e.watchdog.Wait()
	e.watchdogPipe.Close()
	e.watchdog, e.watchdogPipe = nil, nil
}

func (e *ejabberd) pidFile() string { return filepath.Join(e.dir, "ejabberd.pid") }

// stop sends SIGTERM to the VM (by the pid it wrote): Erlang then shuts
// ejabberd down cleanly, and sh, su and ejabberdctl exit after it, each
// reaping its child. Signalling ejabberdctl's group instead would orphan the
// VM. After the grace time everything left is killed.
func (e *ejabberd) stop(p *process) error {
	e.stopWatchdog()
	defer reapErlangOrphans(5 * time.Second)
	vm := e.vmPid()
	if vm <= 0 || p.exited() {
		return p.terminate(10 * time.Second)
	}
	_ = syscall.Kill(vm, syscall.SIGTERM)
	t := time.NewTimer(20 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(vm, syscall.SIGKILL)
	err := p.terminate(5 * time.Second)
	return errors.Join(errors.New("xmpptest: ejabberd did not stop within 20s; killed"), err)
}

// vmPid returns the pid the VM wrote, if that process is a running
// beam.smp (0 otherwise).
func (e *ejabberd) vmPid() int {
	b, err := os.ReadFile(e.pidFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		return 0
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || strings.TrimSpace(string(comm)) != "beam.smp" {
		return 0
	}
	return pid
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// register calls ejabberd's register command over mod_http_api (loopback
// only, see api_permissions in the template): the same command as
// "ejabberdctl register", without starting an Erlang VM per call (~1.5 s).
// An existing account is left alone.
func (e *ejabberd) register(ctx context.Context, user, password string) error {
	body, err := json.Marshal(map[string]string{"user": user, "host": Domain, "password": password})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.apiURL+"/register", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("api register: %w", err)
		}
		return e.registerCtl(ctx, user, password)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK || bytes.Contains(out, []byte("already registered")):
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		// /api missing or locked down: the slow way.
		return e.registerCtl(ctx, user, password)
	}
	return fmt.Errorf("api register: %s: %s", resp.Status, bytes.TrimSpace(out))
}

// registerCtl is the same through ejabberdctl (one Erlang VM per call).
func (e *ejabberd) registerCtl(ctx context.Context, user, password string) error {
	cmd := exec.CommandContext(ctx, e.ctl, e.args("register", user, Domain, password)...)
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "ERL_EPMD_ADDRESS=127.0.0.1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("already registered")) {
			return nil
		}
		return fmt.Errorf("ejabberdctl register: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
