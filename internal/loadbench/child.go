package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/store"
)

// childEnv carries the child's settings (JSON) when the program runs
// itself as the otrdesk process. A test binary checks it in TestMain.
const childEnv = "OTRDESK_LOADBENCH_CHILD"

// childConfig is what the otrdesk process needs: where the server and the
// store are, and limits that do not throttle the benchmark.
type childConfig struct {
	Domain, Server, Secret, Store string
	MaxChatsPerOperator, Guests   int
}

// runChild is the otrdesk process: the real component over the real store,
// driven by the parent through its standard input, one command a line:
//
//	mem      → "mem HEAP" (bytes in use after two collections)
//	metrics  → "metrics NAME{LABELS} VALUE ..." (otrdesk_* samples)
//	ready    → "ready true|false"
//
// It runs until its standard input closes (the parent ended) or it is
// killed. It never closes the store itself except on that clean end, so a
// SIGKILL leaves the file exactly as a crash would.
func runChild(spec string) error {
	var cfg childConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		return fmt.Errorf("loadbench: child settings: %w", err)
	}
	st, err := store.Open(cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	comp, err := component.New(component.Config{
		Domain: cfg.Domain, Server: cfg.Server, Secret: cfg.Secret,
		MaxChatsPerOperator: cfg.MaxChatsPerOperator, GuestsPerSkin: cfg.Guests,
		GuestMessagesPerMinute: 1 << 30, NewChatsPerMinute: 1 << 30, NewChatsPerMinuteTotal: 1 << 30,
		Logger: logger(), Registerer: reg,
	}, st)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- comp.Run(ctx) }()

	out := bufio.NewWriter(os.Stdout)
	in := bufio.NewScanner(os.Stdin)
	lines := make(chan string)
	go func() {
		for in.Scan() {
			lines <- in.Text()
		}
		close(lines)
	}()
	for {
		select {
		case err := <-done:
			return fmt.Errorf("loadbench: otrdesk stopped: %w", err)
		case line, ok := <-lines:
			if !ok {
				cancel()
				<-done
				return nil
			}
			switch line {
			case "mem":
				fmt.Fprintf(out, "mem %d\n", heapInUse())
			case "ready":
				ok, _ := comp.Ready()
				fmt.Fprintf(out, "ready %t\n", ok)
			case "metrics":
				fmt.Fprintf(out, "metrics %s\n", samples(reg))
			default:
				fmt.Fprintf(out, "error unknown command\n")
			}
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// samples renders the registry's counters and gauges as NAME{k=v,...}=VALUE
// words on one line.
func samples(reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		return ""
	}
	var words []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			default:
				continue
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			words = append(words, mf.GetName()+"{"+strings.Join(labels, ",")+"}="+strconv.FormatFloat(v, 'f', -1, 64))
		}
	}
	return strings.Join(words, " ")
}

// logger discards otrdesk's log unless OTRDESK_BENCH_LOG=debug.
func logger() *slog.Logger {
	if os.Getenv("OTRDESK_BENCH_LOG") == "debug" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// otrdeskProc is the parent's handle on one otrdesk process.
type otrdeskProc struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	mu   sync.Mutex // one command at a time
	done chan struct{}
}

// startOtrdesk starts this program again as the otrdesk process.
func startOtrdesk(cfg childConfig) (*otrdeskProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("loadbench: finding this program: %w", err)
	}
	spec, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadbench: starting otrdesk: %w", err)
	}
	p := &otrdeskProc{cmd: cmd, in: in, out: bufio.NewScanner(outPipe), done: make(chan struct{})}
	p.out.Buffer(make([]byte, 64<<10), 16<<20)
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// ask sends one command and returns the rest of its answer line.
func (p *otrdeskProc) ask(cmd string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		return "", fmt.Errorf("loadbench: asking otrdesk %s: %w", cmd, err)
	}
	if !p.out.Scan() {
		return "", fmt.Errorf("loadbench: otrdesk gave no answer to %s: %w", cmd, errors.Join(p.out.Err(), io.ErrUnexpectedEOF))
	}
	got, ok := strings.CutPrefix(p.out.Text(), cmd+" ")
	if !ok {
		return "", fmt.Errorf("loadbench: otrdesk answered %s with %q", cmd, p.out.Text())
	}
	return got, nil
}

func (p *otrdeskProc) heap() (uint64, error) {
	s, err := p.ask("mem")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(s, 10, 64)
}

// metrics returns otrdesk's counters and gauges by NAME{labels}.
func (p *otrdeskProc) metrics() (map[string]float64, error) {
	s, err := p.ask("metrics")
	if err != nil {
		return nil, err
	}
	m := map[string]float64{}
	for _, w := range strings.Fields(s) {
		i := strings.LastIndexByte(w, '=')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(w[i+1:], 64)
		if err == nil {
			m[w[:i]] = v
		}
	}
	return m, nil
}

// kill ends the process with SIGKILL, as a crash would.
func (p *otrdeskProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// stop ends the process cleanly: its input closes, it cancels Run and
// closes the store. It is killed if that takes longer than a bound.
func (p *otrdeskProc) stop() {
	p.in.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}
