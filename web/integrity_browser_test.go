package web_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
)

// tampered serves dist with one file's bytes replaced (and without its
// precompressed forms, so the replacement is what every browser gets).
type tampered struct {
	fs.FS
	name string
	data []byte
}

func (t tampered) Open(name string) (fs.File, error) {
	switch name {
	case t.name:
		return fstest.MapFS{name: {Data: t.data}}.Open(name)
	case t.name + ".br", t.name + ".gz":
		return nil, fs.ErrNotExist
	}
	return t.FS.Open(name)
}

// TestTamperedEngineRefused: the page compiles the wasm engine while it
// downloads and checks its hash itself; a module that is not byte for byte
// the one the launcher names never runs. The replacement here is a working
// engine (the real one with an extra custom section, which changes nothing
// it does), so a missing or wrong check would show the verified sentence.
func TestTamperedEngineRefused(t *testing.T) {
	s := shopWithAda(t)
	dist := assets(t)
	names, err := fs.Glob(dist, "assets/otr-*.wasm")
	if err != nil || len(names) != 1 {
		t.Fatalf("finding the wasm engine in dist: %v %v", names, err)
	}
	good, err := fs.ReadFile(dist, names[0])
	if err != nil {
		t.Fatal(err)
	}
	// A custom section (id 0) named "x" holding "y": valid, and ignored.
	bad := append(append([]byte{}, good...), 0, 3, 1, 'x', 'y')
	site := benchSite(t, s, tampered{FS: dist, name: names[0], data: bad})

	b := newBrowser(t)
	b.open(site)
	b.clickLauncher()
	b.waitFor("the engine refused", `(() => { const e = `+widgetRoot+`.querySelector('.p .e'); return e && !e.hidden && /Encryption could not be started/.test(e.textContent); })()`)
	if got := b.securityText(); got == sentVerified || got == sentUnverified {
		t.Errorf("with a tampered engine the line says %q", got)
	}
	if all := b.eval(pageText); strings.Contains(all, sentVerified) {
		t.Errorf("the page contains %q with a tampered engine", sentVerified)
	}
	if got := b.eval(widgetRoot + `.querySelector('textarea').disabled ? 'disabled' : 'enabled'`); got != "disabled" {
		t.Errorf("the message input is %s with a tampered engine", got)
	}
	b.screenshot("tampered-engine")
}
