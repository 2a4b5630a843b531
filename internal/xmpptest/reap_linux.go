package xmpptest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The Erlang VM's helper processes (erl_child_setup, inet_gethost) outlive
// the VM by a moment and are re-parented. Where PID 1 does not reap orphans
// (minimal container inits), each ejabberd stop would leave zombies behind.
// The harness therefore makes the process a child subreaper the first time
// it starts ejabberd, and reaps those helpers, by name, after each stop.

const prSetChildSubreaper = 36

var subreaperOnce sync.Once

func becomeSubreaper() {
	subreaperOnce.Do(func() {
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}

// erlangHelpers are the only orphans the harness reaps (reaping anything
// else could steal the exit status of another exec.Cmd in the process).
var erlangHelpers = map[string]bool{"erl_child_setup": true, "inet_gethost": true, "beam.smp": true, "epmd": true}

// reapErlangOrphans waits (bounded) for Erlang helper processes re-parented
// to this process to exit, and reaps them.
func reapErlangOrphans(timeout time.Duration) {
	self := os.Getpid()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := false
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(d + "/stat")
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...
			s := string(b)
			open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if open < 0 || close < open {
				continue
			}
			comm := s[open+1 : close]
			f := strings.Fields(s[close+1:])
			if len(f) < 2 || !erlangHelpers[comm] {
				continue
			}
			if ppid, _ := strconv.Atoi(f[1]); ppid != self {
				continue
			}
			pid, _ := strconv.Atoi(filepath.Base(d))
			if f[0] == "Z" {
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			} else {
				pending = true
			}
		}
		if !pending || time.Now().After(deadline) {
			return
		}
		<-tick.C
	}
}

// childAttr makes a server process get SIGTERM if the harness's process
// dies without cleaning up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
