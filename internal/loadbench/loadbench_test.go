package main

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary be the otrdesk child process too, as the
// command is.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTinyRun runs the whole benchmark at a tiny scale (a few visitors,
// some of them c2s, a few operators, a SIGKILL and restart of otrdesk) and
// checks what a user would notice: no message lost or crossed, every chat
// back with its operator after the crash.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody and otrdesk")
	}
	res, err := run(context.Background(), options{
		visitors: 20, operators: 3, c2s: 4,
		duration: 2 * time.Second, down: 1500 * time.Millisecond, timeout: 500 * time.Millisecond,
		window: 8, size: 100, bound: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res.print(&out)
	t.Log("\n" + out.String())
	for _, p := range []struct {
		ph   *phase
		left int
	}{{res.open, res.openLeft}, {res.steady, res.steadyLeft}, {res.crash, res.crashLeft}} {
		if n := p.left; n != 0 {
			t.Errorf("%s: %d messages lost", p.ph.name, n)
		}
		if p.ph.echoed == 0 {
			t.Errorf("%s: nothing relayed", p.ph.name)
		}
	}
	if res.open.echoed < 20 {
		t.Errorf("open: %d chats answered, want 20", res.open.echoed)
	}
	if res.crossed != 0 {
		t.Errorf("%d messages reached the wrong visitor", res.crossed)
	}
	if res.moved+res.notRecovered != 0 {
		t.Errorf("chats lost in the crash: %d moved, %d never relayed again", res.moved, res.notRecovered)
	}
	if res.killToReady == 0 {
		t.Error("otrdesk never became ready after the restart")
	}
	if res.storeEnd <= 0 {
		t.Error("no store file")
	}
}

func TestParseMarkAndID(t *testing.T) {
	l := &load{size: 30}
	v := &visitor{id: 12, seq: 7, jid: "v12@visitors.example.org/web", comp: true, to: "bench0@chat.example.org"}
	raw := l.stanza(v)
	for _, tc := range []struct {
		name, in string
		id, seq  int
		ok       bool
	}{
		{"body", "lb 12 7 xxxx", 12, 7, true},
		{"no padding", "lb 12 7", 0, 0, false},
		{"other text", "hello", 0, 0, false},
		{"not numbers", "lb a b c", 0, 0, false},
	} {
		id, seq, ok := parseMark(tc.in)
		if ok != tc.ok || ok && (id != tc.id || seq != tc.seq) {
			t.Errorf("%s: parseMark(%q) = %d, %d, %t", tc.name, tc.in, id, seq, ok)
		}
	}
	if id, seq, ok := parseID("lb-12-7"); !ok || id != 12 || seq != 7 {
		t.Errorf("parseID = %d, %d, %t", id, seq, ok)
	}
	if _, _, ok := parseID("xt-3"); ok {
		t.Error("parseID accepted another client's id")
	}
	if !bytes.Contains([]byte(raw), []byte("id='lb-12-7'")) || !bytes.Contains([]byte(raw), []byte("<body>lb 12 7 ")) {
		t.Errorf("stanza %s does not carry its mark", raw)
	}
}
