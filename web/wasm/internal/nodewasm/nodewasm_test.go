package nodewasm

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCall: an answer comes back as sent, and a call the script answers
// with {exception} fails the test that made it, naming what was thrown:
// the wasm tests rely on that to catch an API that throws.
func TestCall(t *testing.T) {
	d := Start(t, filepath.Join("testdata", "echo.cjs"))
	var r struct{ Echo string }
	d.Call(map[string]any{"echo": "hello ✓"}, &r)
	if r.Echo != "hello ✓" {
		t.Fatalf("echo answered %q", r.Echo)
	}

	rec := &fatalRecorder{TB: t}
	threw := &Driver{t: rec, in: d.in, out: d.out}
	done := make(chan struct{})
	go func() {
		defer close(done)
		threw.Call(map[string]any{"throw": "boom"}, &r)
	}()
	<-done
	if !strings.Contains(rec.fatal, "boom") {
		t.Fatalf("a call that threw: the test was failed with %q", rec.fatal)
	}

	d.Call(map[string]any{"echo": "still there"}, &r)
	if r.Echo != "still there" {
		t.Fatalf("after the exception, echo answered %q", r.Echo)
	}
}

// fatalRecorder records a Fatal and ends the goroutine as testing.T does,
// without failing the test.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
