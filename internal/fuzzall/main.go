// Command fuzzall runs every fuzz target of the module, one after the other,
// for the same time each, and prints a table:
//
//	package  target  execs  new interesting  result
//
// Targets are found without building anything: `go list` names each
// package's test files (after build constraints), and each file is parsed
// for top-level functions FuzzXxx(f *testing.F). Each target then runs alone:
//
//	go test -run '^$' -fuzz '^FuzzXxx$' -fuzztime T PACKAGE
//
// "execs" and "new interesting" are the last figures the fuzzer reported
// (new interesting inputs go to Go's fuzz cache, not to the repository). A
// target that fails has its failing input written under the package's
// testdata/fuzz/FuzzXxx/ by go test; the table names that file (commit it:
// it becomes a seed that reproduces the bug in every `go test`), and
// fuzzall exits with status 1 once every target has run.
//
// Run: make fuzz [FUZZTIME=1m], or
//
//	go run ./internal/fuzzall [-fuzztime 1m] [-parallel N] [-match REGEXP] [-v] [packages]
//
// packages default to ./... (run it from the module root).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

func main() {
	fuzztime := flag.String("fuzztime", "1m", "how long to fuzz each target: a duration, or Nx for N executions")
	parallel := flag.Int("parallel", 0, "fuzzing workers per target (0: go test's default, GOMAXPROCS)")
	match := flag.String("match", "", "run only targets whose name matches this regular expression")
	verbose := flag.Bool("v", false, "stream go test's output")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fuzzall [flags] [packages]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	cfg := config{fuzztime: *fuzztime, parallel: *parallel, match: *match, verbose: *verbose, patterns: flag.Args(), stdout: os.Stdout, stderr: os.Stderr}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// errFailed is returned when at least one target failed or did not run.
var errFailed = errors.New("fuzzall: some targets failed")

// config is what main's flags say.
type config struct {
	fuzztime       string
	parallel       int
	match          string
	verbose        bool
	patterns       []string
	dir            string // where go runs ("" for the working directory)
	stdout, stderr io.Writer
}

func run(cfg config) error {
	timeout, err := testTimeout(cfg.fuzztime)
	if err != nil {
		return err
	}
	var re *regexp.Regexp
	if cfg.match != "" {
		if re, err = regexp.Compile(cfg.match); err != nil {
			return fmt.Errorf("fuzzall: -match: %w", err)
		}
	}
	patterns := cfg.patterns
	if len(patterns) == 0 {
		patterns = []string{"./..."}
	}
	targets, err := listTargets(cfg.dir, patterns, cfg.stderr)
	if err != nil {
		return err
	}
	if re != nil {
		targets = filter(targets, re)
	}
	if len(targets) == 0 {
		return errors.New("fuzzall: no fuzz targets found")
	}
	fmt.Fprintf(cfg.stderr, "fuzzall: %d targets, %s each\n", len(targets), cfg.fuzztime)

	var results []result
	failed := false
	for i, t := range targets {
		fmt.Fprintf(cfg.stderr, "fuzzall: [%d/%d] %s %s\n", i+1, len(targets), t.pkg, t.name)
		// Minimising each new interesting input may take a minute by
		// default, which a slow target (omemo's Restore) spends instead of
		// fuzzing: a few tries per input are enough here.
		args := []string{"test", "-run", "^$", "-fuzz", "^" + t.name + "$", "-fuzztime", cfg.fuzztime, "-fuzzminimizetime", "3x", "-timeout", timeout.String()}
		if cfg.parallel > 0 {
			args = append(args, "-parallel", strconv.Itoa(cfg.parallel))
		}
		args = append(args, t.pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = cfg.dir
		var out bytes.Buffer
		var w io.Writer = &out
		if cfg.verbose {
			w = io.MultiWriter(&out, cfg.stderr)
		}
		cmd.Stdout, cmd.Stderr = w, w
		start := time.Now()
		runErr := cmd.Run()
		r := parseOutput(out.Bytes(), runErr == nil)
		r.target, r.took = t, time.Since(start)
		if r.input != "" {
			r.input = relative(cfg.dir, filepath.Join(t.dir, r.input))
		}
		if r.status == "FAIL" || r.status == "error" {
			failed = true
			if !cfg.verbose {
				// What go test said, so the failure can be read here.
				cfg.stderr.Write(out.Bytes())
			}
		}
		results = append(results, r)
	}
	printTable(cfg.stdout, results)
	if failed {
		return errFailed
	}
	return nil
}

// testTimeout bounds one go test run: the fuzzing time plus room for
// building and for the seed corpus. go test's own default of 10 minutes
// would cut off longer fuzzing times.
func testTimeout(fuzztime string) (time.Duration, error) {
	const slack = 10 * time.Minute
	if n, ok := strings.CutSuffix(fuzztime, "x"); ok {
		if v, err := strconv.ParseUint(n, 10, 63); err == nil && v > 0 {
			return 0, nil // a count, not a time: no timeout
		}
	} else if d, err := time.ParseDuration(fuzztime); err == nil && d > 0 {
		return d + slack, nil
	}
	return 0, fmt.Errorf("fuzzall: -fuzztime %q is neither a positive duration nor Nx", fuzztime)
}

// target is one fuzz function of one package.
type target struct {
	pkg  string // import path
	dir  string // the package's directory
	name string // FuzzXxx
}

// listTargets finds the fuzz targets of the packages named by patterns,
// sorted by package then name.
func listTargets(dir string, patterns []string, stderr io.Writer) ([]target, error) {
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Dir,TestGoFiles,XTestGoFiles"}, patterns...)...)
	cmd.Dir = dir
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("fuzzall: go list: %w", err)
	}
	var targets []target
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath, Dir           string
			TestGoFiles, XTestGoFiles []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("fuzzall: reading go list output: %w", err)
		}
		for _, f := range append(p.TestGoFiles, p.XTestGoFiles...) {
			names, err := fuzzFuncs(filepath.Join(p.Dir, f))
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				targets = append(targets, target{pkg: p.ImportPath, dir: p.Dir, name: n})
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool {
		if targets[i].pkg != targets[j].pkg {
			return targets[i].pkg < targets[j].pkg
		}
		return targets[i].name < targets[j].name
	})
	return targets, nil
}

// fuzzFuncs returns the fuzz targets declared in one test file: top-level
// functions named Fuzz or FuzzXxx (Xxx not starting with a lower-case
// letter, as go test requires) with one parameter of type *testing.F.
func fuzzFuncs(path string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("fuzzall: parsing %s: %w", path, err)
	}
	testingName := "testing" // the name the file imports package testing as
	for _, imp := range f.Imports {
		if imp.Path.Value == `"testing"` && imp.Name != nil {
			testingName = imp.Name.Name
		}
	}
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !isFuzzName(fn.Name.Name) {
			continue
		}
		params := fn.Type.Params.List
		if len(params) != 1 || len(params[0].Names) > 1 {
			continue
		}
		star, ok := params[0].Type.(*ast.StarExpr)
		if !ok {
			continue
		}
		sel, ok := star.X.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "F" {
			continue
		}
		if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == testingName {
			names = append(names, fn.Name.Name)
		}
	}
	return names, nil
}

func isFuzzName(name string) bool {
	rest, ok := strings.CutPrefix(name, "Fuzz")
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return !unicode.IsLower(r)
}

func filter(ts []target, re *regexp.Regexp) []target {
	var out []target
	for _, t := range ts {
		if re.MatchString(t.name) {
			out = append(out, t)
		}
	}
	return out
}

// result is what one go test -fuzz run reported.
type result struct {
	target
	execs, interesting int64  // -1 when the fuzzer reported none
	status             string // "ok", "ok (seeds only)", "FAIL" (a failing input) or "error" (go test failed otherwise)
	input              string // the failing input go test wrote, if any
	took               time.Duration
}

var (
	execsRE       = regexp.MustCompile(`execs: (\d+)`)
	interestingRE = regexp.MustCompile(`new interesting: (\d+)`)
	inputRE       = regexp.MustCompile(`Failing input written to (\S+)`)
)

// parseOutput reads go test -fuzz's output. Progress lines look like
//
//	fuzz: elapsed: 3s, execs: 123 (41/sec), new interesting: 2 (total: 14)
//
// and the last one counts the whole run. A failure prints
// "--- FAIL: FuzzXxx" and, when the fuzzer found the input, "Failing input
// written to testdata/fuzz/FuzzXxx/HASH" (relative to the package).
func parseOutput(out []byte, passed bool) result {
	r := result{execs: -1, interesting: -1, status: "ok"}
	failLine := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "fuzz: elapsed:") {
			if m := execsRE.FindStringSubmatch(line); m != nil {
				r.execs, _ = strconv.ParseInt(m[1], 10, 64)
			}
			if m := interestingRE.FindStringSubmatch(line); m != nil {
				r.interesting, _ = strconv.ParseInt(m[1], 10, 64)
			}
		}
		if m := inputRE.FindStringSubmatch(line); m != nil {
			r.input = m[1]
		}
		if strings.Contains(line, "--- FAIL:") {
			failLine = true
		}
	}
	switch {
	case passed && r.execs < 0:
		// fuzztime ran out while the fuzzer was still running the corpus
		// once to measure coverage: the seeds passed, nothing new was tried.
		r.status = "ok (seeds only)"
	case passed:
	case failLine:
		r.status = "FAIL"
	default:
		r.status = "error"
	}
	return r
}

// relative returns path relative to dir ("" for the working directory)
// when it is below it.
func relative(dir, path string) string {
	wd, err := filepath.Abs(dir)
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "package\ttarget\texecs\tnew interesting\ttime\tresult")
	for _, r := range results {
		status := r.status
		if r.input != "" {
			status += " " + r.input
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.pkg, r.name, count(r.execs), count(r.interesting), r.took.Round(100*time.Millisecond), status)
	}
	tw.Flush()
}

func count(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}
