package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/store"
)

// limitedAPI is the admin handler with a clock the test moves.
func limitedAPI(t *testing.T, l loginLimits) (http.Handler, *time.Time) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	return newHandler(&Local{Store: st}, st, "right-token-0123456789abcdef01234", newLoginLimiter(l, func() time.Time { return now })), &now
}

func login(h http.Handler, addr, token string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/admin/v1/skins", nil)
	r.RemoteAddr = addr + ":40000"
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const right = "right-token-0123456789abcdef01234"

func TestFailedLoginsPerAddress(t *testing.T) {
	h, now := limitedAPI(t, loginLimits{PerAddr: 3, PerAddrEvery: 10 * time.Second, Total: 1000, TotalEvery: time.Millisecond, MaxAddrs: 100})
	for i := 0; i < 3; i++ {
		if w := login(h, "192.0.2.1", "guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, w.Code)
		}
	}
	// Over the limit: 429 with Retry-After, and the right token is refused
	// too, since the token is not looked at.
	for _, token := range []string{"guess", right} {
		w := login(h, "192.0.2.1", token)
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("%s over the limit: %d, want 429", token, w.Code)
		}
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra != 10 {
			t.Fatalf("Retry-After %q, want 10", w.Header().Get("Retry-After"))
		}
	}
	// Another address is not held back by this one.
	if w := login(h, "192.0.2.2", right); w.Code != http.StatusOK {
		t.Fatalf("another address: %d", w.Code)
	}
	// A refused request while limited costs nothing more: one interval later
	// the address may try again, and the right token works.
	*now = now.Add(10 * time.Second)
	if w := login(h, "192.0.2.1", right); w.Code != http.StatusOK {
		t.Fatalf("after the wait: %d", w.Code)
	}
	// Right logins take nothing from the bucket.
	for i := 0; i < 10; i++ {
		if w := login(h, "192.0.2.1", right); w.Code != http.StatusOK {
			t.Fatalf("right login %d: %d", i, w.Code)
		}
	}
	// One failure spends the one token that came back: limited again.
	login(h, "192.0.2.1", "guess")
	if w := login(h, "192.0.2.1", right); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after another failure: %d, want 429", w.Code)
	}
}

func TestFailedLoginsInTotal(t *testing.T) {
	h, now := limitedAPI(t, loginLimits{PerAddr: 5, PerAddrEvery: time.Second, Total: 4, TotalEvery: time.Minute, MaxAddrs: 100})
	// Four addresses fail once each: the total is spent though no address is.
	for _, a := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"} {
		if w := login(h, a, "guess"); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s: %d", a, w.Code)
		}
	}
	w := login(h, "203.0.113.9", right)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("a fresh address with the right token after the total is spent: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	*now = now.Add(time.Minute)
	if w := login(h, "203.0.113.9", right); w.Code != http.StatusOK {
		t.Fatalf("after the wait: %d", w.Code)
	}
}

func TestLimiterForgetsAddresses(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	l := newLoginLimiter(loginLimits{PerAddr: 2, PerAddrEvery: time.Second, Total: 1e9, TotalEvery: time.Nanosecond, MaxAddrs: 50}, func() time.Time { return now })
	for i := 0; i < 1000; i++ {
		l.failed("10.0.0." + strconv.Itoa(i))
		if len(l.addrs) > 50 {
			t.Fatalf("%d addresses tracked, the bound is 50", len(l.addrs))
		}
		now = now.Add(100 * time.Millisecond)
	}
}

// The client turns a 429 into ErrTooManyFailures and says how long to wait.
func TestClientSeesTooManyFailures(t *testing.T) {
	h, _ := limitedAPI(t, loginLimits{PerAddr: 1, PerAddrEvery: time.Minute, Total: 100, TotalEvery: time.Second, MaxAddrs: 10})
	srv := httptest.NewServer(h)
	defer srv.Close()
	bad := &Client{BaseURL: srv.URL, Token: "guess", HTTP: srv.Client()}
	if _, err := bad.Skins(); !errorsIs(err, ErrUnauthorized) {
		t.Fatalf("first failure: %v", err)
	}
	good := &Client{BaseURL: srv.URL, Token: right, HTTP: srv.Client()}
	_, err := good.Skins()
	if !errorsIs(err, ErrTooManyFailures) || !contains(err.Error(), "retry after 60 s") {
		t.Fatalf("limited: %v", err)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
func contains(s, sub string) bool     { return strings.Contains(s, sub) }
