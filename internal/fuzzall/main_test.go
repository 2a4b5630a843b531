package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A throwaway module with one target that holds and one the fuzzer breaks
// within a few executions.
var testModule = map[string]string{
	"go.mod": "module example.test/m\n\ngo 1.24\n",
	"m.go":   "package m\n\nfunc Parse(b []byte) int { return len(b) }\n",
	"m_test.go": `package m

import tst "testing"

func FuzzHolds(f *tst.F) {
	f.Add([]byte("a"))
	f.Fuzz(func(t *tst.T, b []byte) { Parse(b) })
}

func FuzzBreaks(f *tst.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *tst.T, b []byte) {
		if len(b) > 0 {
			panic("fuzzall test: broken")
		}
	})
}
`,
}

// Functions that look like fuzz targets but are not (go test refuses the
// last two, so they only appear in the listing test).
const decoys = `package m

import "testing"

func Fuzzy(f *testing.F)          {} // lower case after Fuzz
func FuzzHelper(t *testing.T)     {} // not *testing.F
func FuzzTwo(f *testing.F, n int) {} // two parameters
func (x T) FuzzMethod(f *testing.F) {} // a method

type T struct{}
`

func writeModule(t *testing.T) string {
	dir := t.TempDir()
	for name, text := range testModule {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestListTargets(t *testing.T) {
	dir := writeModule(t)
	if err := os.WriteFile(filepath.Join(dir, "decoy_test.go"), []byte(decoys), 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := listTargets(dir, []string{"./..."}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tg := range ts {
		names = append(names, tg.pkg+"."+tg.name)
	}
	if got, want := strings.Join(names, " "), "example.test/m.FuzzBreaks example.test/m.FuzzHolds"; got != want {
		t.Errorf("targets %q, want %q", got, want)
	}
}

// TestThisModule checks that the module's own targets are found, in
// internal and external test packages alike.
func TestThisModule(t *testing.T) {
	ts, err := listTargets(filepath.Join("..", ".."), []string{"./..."}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, tg := range ts {
		found[tg.pkg+"."+tg.name] = true
	}
	for _, want := range []string{"otrdesk.im/otrdesk/otr.FuzzClassify", "otrdesk.im/otrdesk/internal/xmpptest.FuzzParseStanza"} {
		if !found[want] {
			t.Errorf("%s not among the %d targets found", want, len(ts))
		}
	}
}

// TestRun fuzzes the throwaway module for real, for a count of executions
// rather than a time: the table has both targets, the broken one is FAIL
// with the input go test wrote, and run fails.
func TestRun(t *testing.T) {
	dir := writeModule(t)
	var stdout, stderr bytes.Buffer
	err := run(config{fuzztime: "20000x", parallel: 1, dir: dir, stdout: &stdout, stderr: &stderr})
	if !errors.Is(err, errFailed) {
		t.Fatalf("run: %v, want errFailed; stderr:\n%s", err, stderr.String())
	}
	table := stdout.String()
	t.Logf("table:\n%s\nstderr:\n%s", table, stderr.String())
	holds := regexp.MustCompile(`(?m)^example\.test/m\s+FuzzHolds\s+\d+\s+\d+\s+\S+\s+ok$`)
	if !holds.MatchString(table) {
		t.Errorf("no ok row for FuzzHolds")
	}
	breaks := regexp.MustCompile(`(?m)^example\.test/m\s+FuzzBreaks\s+.*FAIL (testdata/fuzz/FuzzBreaks/[0-9a-f]+)$`)
	m := breaks.FindStringSubmatch(table)
	if m == nil {
		t.Fatalf("no FAIL row naming the input for FuzzBreaks")
	}
	if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
		t.Errorf("the failing input named in the table: %v", err)
	}
	if !strings.Contains(stderr.String(), "fuzzall test: broken") {
		t.Errorf("go test's failure output not shown on stderr:\n%s", stderr.String())
	}
}

func TestParseOutput(t *testing.T) {
	for _, tc := range []struct {
		name               string
		out                string
		passed             bool
		execs, interesting int64
		status, input      string
	}{
		{
			name: "fuzzed",
			out: `fuzz: elapsed: 0s, gathering baseline coverage: 0/93 completed
fuzz: elapsed: 1s, gathering baseline coverage: 93/93 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 31409 (14712/sec), new interesting: 22 (total: 115)
fuzz: elapsed: 5s, execs: 60001 (14000/sec), new interesting: 25 (total: 118)
PASS
ok  	otrdesk.im/otrdesk/otr	5.535s
`,
			passed: true, execs: 60001, interesting: 25, status: "ok",
		},
		{
			name: "seeds only",
			out: `fuzz: elapsed: 0s, gathering baseline coverage: 0/900 completed
PASS
`,
			passed: true, execs: -1, interesting: -1, status: "ok (seeds only)",
		},
		{
			name: "found",
			out: `fuzz: elapsed: 0s, execs: 2 (0/sec), new interesting: 0 (total: 1)
--- FAIL: FuzzBreaks (0.03s)
    --- FAIL: FuzzBreaks (0.00s)
        testing.go:1591: panic: broken

    Failing input written to testdata/fuzz/FuzzBreaks/0123abcd
    To re-run:
    go test -run=FuzzBreaks/0123abcd
FAIL
exit status 1
FAIL	example.test/m	0.050s
`,
			execs: 2, interesting: 0, status: "FAIL", input: "testdata/fuzz/FuzzBreaks/0123abcd",
		},
		{
			name: "seed fails",
			out: `--- FAIL: FuzzX (0.00s)
    --- FAIL: FuzzX/seed#0 (0.00s)
FAIL
`,
			execs: -1, interesting: -1, status: "FAIL",
		},
		{
			name:  "does not build",
			out:   "# example.test/m\n./m_test.go:3:1: syntax error\nFAIL\texample.test/m [build failed]\n",
			execs: -1, interesting: -1, status: "error",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := parseOutput([]byte(tc.out), tc.passed)
			if r.execs != tc.execs || r.interesting != tc.interesting || r.status != tc.status || r.input != tc.input {
				t.Errorf("got execs %d, interesting %d, status %q, input %q; want %d, %d, %q, %q",
					r.execs, r.interesting, r.status, r.input, tc.execs, tc.interesting, tc.status, tc.input)
			}
		})
	}
}

func TestTestTimeout(t *testing.T) {
	for in, ok := range map[string]bool{"1m": true, "5s": true, "1000x": true, "0s": false, "x": false, "-1m": false, "soon": false} {
		if _, err := testTimeout(in); (err == nil) != ok {
			t.Errorf("testTimeout(%q): error %v", in, err)
		}
	}
}
