package xmpptest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// prosody runs Debian's prosody 0.12 in the foreground with the config
// rendered from prosody.cfg.lua.tmpl.
type prosody struct {
	bin, ctl, cfg string
}

// StartProsody starts a private Prosody on loopback and waits until it
// serves c2s, components and BOSH. Close stops it.
func StartProsody(ctx context.Context, opts Options) (*Server, error) {
	bin, err := lookPath("prosody", "prosody")
	if err != nil {
		return nil, err
	}
	ctl, err := lookPath("prosodyctl", "prosody")
	if err != nil {
		return nil, err
	}
	return startWithRetry(func() (*Server, error) { return startProsody(ctx, opts, bin, ctl) })
}

func startProsody(ctx context.Context, opts Options, bin, ctl string) (*Server, error) {
	s, data, err := newServer("prosody", opts, 0o700)
	if err != nil {
		return nil, err
	}
	s.LogFile = filepath.Join(s.Dir, "prosody.log")
	p := &prosody{bin: bin, ctl: ctl, cfg: filepath.Join(s.Dir, "prosody.cfg.lua")}
	s.backend = p
	cfg, err := renderTemplate("prosody.cfg.lua.tmpl", data)
	if err == nil {
		err = os.WriteFile(p.cfg, cfg, 0o600)
	}
	if err == nil {
		err = os.MkdirAll(filepath.Join(s.Dir, "data"), 0o700)
	}
	if err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("xmpptest: writing prosody config: %w", err)
	}
	if err := s.Start(ctx); err != nil {
		s.cleanupDir()
		return nil, err
	}
	return s, nil
}

func (p *prosody) command() (*exec.Cmd, error) {
	cmd := exec.Command(p.bin, "-F", "--config", p.cfg)
	cmd.Dir = filepath.Dir(p.cfg)
	// Stop with the test binary if it dies without cleaning up.
	cmd.SysProcAttr = childAttr()
	return cmd, nil
}

func (p *prosody) stop(proc *process) error {
	return proc.terminate(10 * time.Second)
}

// register uses prosodyctl, which writes the account file directly; the
// running server reads it at login.
func (p *prosody) register(ctx context.Context, user, password string) error {
	cmd := exec.CommandContext(ctx, p.ctl, "--config", p.cfg, "register", user, Domain, password)
	cmd.Dir = filepath.Dir(p.cfg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("prosodyctl register: %w: %s", err, out)
	}
	return nil
}
