package xmpptest

import (
	"context"
	"testing"
	"time"
)

// Prosody starts a private Prosody for a test (or benchmark) and stops it in
// t.Cleanup. A missing binary fails the test with the package to install.
func Prosody(t testing.TB, opts Options) *Server {
	t.Helper()
	return startFor(t, opts, StartProsody)
}

// Ejabberd starts a private ejabberd for a test and stops it (VM included)
// in t.Cleanup. A missing binary fails the test with the package to install.
func Ejabberd(t testing.TB, opts Options) *Server {
	t.Helper()
	return startFor(t, opts, StartEjabberd)
}

func startFor(t testing.TB, opts Options, start func(context.Context, Options) (*Server, error)) *Server {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stopping %s: %v", s.Kind, err)
		}
	})
	return s
}

// MustRegister registers user@example.org or fails the test.
func (s *Server) MustRegister(t testing.TB, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Register(ctx, user, password); err != nil {
		t.Fatal(err)
	}
}

// MustDial logs in as user@example.org or fails the test; the client is
// closed in t.Cleanup.
func (s *Server) MustDial(t testing.TB, user, password, resource string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.Dial(ctx, user, password, resource)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// MustDialAnonymous logs in anonymously on guest.example.org or fails the
// test; the client is closed in t.Cleanup.
func (s *Server) MustDialAnonymous(t testing.TB) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.DialAnonymous(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// RunUntilCleanup runs run (a component's, bot's or client's Run) in a
// goroutine for the rest of the test: t.Cleanup cancels its context and
// waits for it to return, so nothing outlives the server it talks to. An
// error it returns then fails the test, named by what.
func RunUntilCleanup(t testing.TB, what string, run func(context.Context) error) {
	runUntilCleanup(t, what, run, t.Errorf)
}

// RunUntilCleanupLogged is RunUntilCleanup for a part whose Run may end in
// an error the test expects, such as one whose server the test stops or an
// attacker the server disconnects: the error is only logged.
func RunUntilCleanupLogged(t testing.TB, what string, run func(context.Context) error) {
	runUntilCleanup(t, what, run, t.Logf)
}

func runUntilCleanup(t testing.TB, what string, run func(context.Context) error, report func(string, ...any)) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			report("%s: %v", what, err)
		}
	})
}
