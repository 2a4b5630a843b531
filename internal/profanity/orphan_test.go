package profanity

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOrphanedSessionEnds: a test binary that dies without its cleanup
// (killed by go test -timeout) leaves no tmux server and no Profanity
// behind. The child below starts them as Start does and exits at once.
func TestOrphanedSessionEnds(t *testing.T) {
	sockDir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanChild$")
	cmd.Env = append(os.Environ(), "PROFANITY_ORPHAN_CHILD="+sockDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v: %s", err, out)
	}
	var pid int
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "profanity pid "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if pid <= 0 {
		t.Fatalf("the child did not start Profanity: %s", out)
	}
	sock := filepath.Join(sockDir, "s")
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) || exec.Command("tmux", "-S", sock, "has-session").Run() == nil {
		if time.Now().After(deadline) {
			exec.Command("tmux", "-S", sock, "kill-server").Run()
			t.Fatalf("Profanity (pid %d) or its tmux server outlived the test binary that started them", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOrphanChild is the child of TestOrphanedSessionEnds: it launches
// Profanity, says its pid, and exits without any cleanup.
func TestOrphanChild(t *testing.T) {
	dir := os.Getenv("PROFANITY_ORPHAN_CHILD")
	if dir == "" {
		t.Skip("run by TestOrphanedSessionEnds")
	}
	tmux, err := lookPath("tmux")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := lookPath("profanity")
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.MkdirTemp(dir, "home")
	if err != nil {
		t.Fatal(err)
	}
	p := &Profanity{t: t, tmux: tmux, home: home, sock: filepath.Join(dir, "s"), cfg: Config{Timeout: 30 * time.Second}}
	if err := p.launch(bin); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tmux, "-S", p.sock, "display-message", "-p", "-t", session, "#{pane_pid}").Output()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("profanity pid %s\n", strings.TrimSpace(string(out)))
	os.Exit(0)
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
