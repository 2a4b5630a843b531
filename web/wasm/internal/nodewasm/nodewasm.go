// Package nodewasm runs the widget's wasm modules under node for the tests
// of web/wasm and its subpackages.
//
// A test builds a module as web/build.mjs builds it for the widget (OTR,
// OMEMO: the package, the go build flags, then wasm/pack), once per test
// binary, and starts a node script that loads it with the toolchain's
// wasm_exec.js. The scripts, under web/wasm/testdata and
// web/wasm/omemo/testdata, share web/wasm/testdata/gowasm.cjs and speak one
// protocol: each JSON line on their stdin is answered with one JSON line on
// their stdout, {exception} when the call threw. A Driver is the Go side of
// that.
//
// Nothing here is used outside tests. A machine without node fails the
// test with the Debian package to install.
package nodewasm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A Module is one of the widget's wasm modules and how to build it.
type Module struct {
	Name  string   // the file name of the build: otr.wasm
	Pkg   string   // the Go package: otrdesk.im/otrdesk/web/wasm
	Flags []string // go build flags, before -o
	Pack  bool     // join the data segments with web/wasm/pack afterwards
}

// The modules as web/build.mjs builds them: keep the two in step, so that
// what the tests run and the benchmarks time is what the widget ships.
var (
	// OTR is the OTR engine. No inlining except in math/big and
	// math/bits, whose loops set its speed: less to download at the same
	// speed (build.mjs says how much).
	OTR = Module{
		Name:  "otr.wasm",
		Pkg:   "otrdesk.im/otrdesk/web/wasm",
		Flags: []string{"-trimpath", "-ldflags=-s", "-gcflags=all=-l", "-gcflags=math/big=", "-gcflags=math/bits="},
		Pack:  true,
	}
	// OMEMO is the OMEMO engine.
	OMEMO = Module{
		Name:  "omemo.wasm",
		Pkg:   "otrdesk.im/otrdesk/web/wasm/omemo",
		Flags: []string{"-trimpath", "-ldflags=-s"},
		Pack:  true,
	}
)

// packCmd is the package of web/wasm/pack, the command build.mjs runs on
// each module.
const packCmd = "otrdesk.im/otrdesk/web/wasm/pack"

// A build is one module built, or the error that stopped it.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	mu      sync.Mutex
	tmpDir  string
	builds  = map[string]*build{}
	execJS  build
	tmpOnce sync.Once
	tmpErr  error
)

// Main runs the tests and benchmarks of a package that uses this one and
// removes its builds; call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if tmpDir != "" {
		os.RemoveAll(tmpDir)
	}
	os.Exit(code)
}

// Build returns the path of m built for GOOS=js GOARCH=wasm. Each module
// is built once per test binary, into a directory Main removes.
func Build(t testing.TB, m Module) string {
	t.Helper()
	key := strings.Join(append([]string{m.Name, m.Pkg, fmt.Sprint(m.Pack)}, m.Flags...), " ")
	mu.Lock()
	b := builds[key]
	if b == nil {
		b = new(build)
		builds[key] = b
	}
	mu.Unlock()
	b.once.Do(func() { b.path, b.err = buildModule(m) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func buildModule(m Module) (string, error) {
	tmpOnce.Do(func() { tmpDir, tmpErr = os.MkdirTemp("", "otrdesk-wasm-test") })
	if tmpErr != nil {
		return "", tmpErr
	}
	// Builds of the same name with other flags must not overwrite each
	// other: each gets a directory of its own.
	dir, err := os.MkdirTemp(tmpDir, "")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, m.Name)
	args := append(append([]string{"build"}, m.Flags...), "-o", out, m.Pkg)
	if err := goCmd(args, "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0"); err != nil {
		return "", err
	}
	if m.Pack {
		if err := goCmd([]string{"run", packCmd, out}); err != nil {
			return "", err
		}
	}
	return out, nil
}

func goCmd(args []string, env ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, out)
	}
	return nil
}

// WasmExec returns the path of this toolchain's wasm_exec.js, the loader
// every Go wasm module needs and the one the widget ships.
func WasmExec(t testing.TB) string {
	t.Helper()
	execJS.once.Do(func() {
		goroot, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			execJS.err = fmt.Errorf("go env GOROOT: %w", err)
			return
		}
		root := strings.TrimSpace(string(goroot))
		for _, p := range []string{filepath.Join(root, "lib", "wasm", "wasm_exec.js"), filepath.Join(root, "misc", "wasm", "wasm_exec.js")} {
			if _, err := os.Stat(p); err == nil {
				execJS.path = p
				return
			}
		}
		execJS.err = fmt.Errorf("wasm_exec.js not found under %s/lib/wasm or %[1]s/misc/wasm", root)
	})
	if execJS.err != nil {
		t.Fatal(execJS.err)
	}
	return execJS.path
}

// A Driver is a node script of the tests, running until the test ends.
type Driver struct {
	t   testing.TB
	in  io.WriteCloser
	out *bufio.Reader
}

// StartModule starts the node script (a path relative to the test's
// directory) with wasm_exec.js and m's build as its first arguments, and
// more after them.
func StartModule(t testing.TB, m Module, script string, more ...string) *Driver {
	t.Helper()
	return Start(t, script, append([]string{WasmExec(t), Build(t, m)}, more...)...)
}

// Start starts node with the script and its arguments; node's working
// directory is the test's, so relative paths are taken from there. The
// process ends when the test does; what it wrote to stderr is logged when
// the test failed.
func Start(t testing.TB, script string, args ...string) *Driver {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node not found: install the Debian package nodejs")
	}
	cmd := exec.Command("node", append([]string{script}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting node %s: %v", script, err)
	}
	t.Cleanup(func() {
		in.Close()
		cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("node stderr: %s", stderr.String())
		}
	})
	return &Driver{t: t, in: in, out: bufio.NewReaderSize(stdout, 1<<20)}
}

// Call writes req as one JSON line and reads the answer into reply. It
// fails the test when node has died, the answer is not JSON for reply, or
// the script answered {exception}: a call threw, which the APIs under test
// must never do.
func (d *Driver) Call(req, reply any) {
	d.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		d.t.Fatal(err)
	}
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("writing to node: %v", err)
	}
	line, err := d.out.ReadBytes('\n')
	if err != nil {
		d.t.Fatalf("node died during %.80s: %v", b, err)
	}
	var threw struct{ Exception string }
	if bytes.HasPrefix(line, []byte("{")) && json.Unmarshal(line, &threw) == nil && threw.Exception != "" {
		d.t.Fatalf("node threw during %.80s: %s", b, threw.Exception)
	}
	if err := json.Unmarshal(line, reply); err != nil {
		d.t.Fatalf("node answered %.200q to %.80s: %v", line, b, err)
	}
}
