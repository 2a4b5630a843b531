package admin

import (
	"math"
	"net"
	"net/http"
	"sync"
	"time"
)

// Failed admin logins are limited by two token buckets: one per client
// address and one for all addresses together. Each failed login takes a
// token from both; a request arriving while either is empty is answered
// 429 with Retry-After and its token is not even compared, so guessing
// costs time whatever the guess. The price, on purpose: while the limit
// holds, the right token is refused too (from that address, or from every
// address when the global bucket is empty). Successful logins take nothing.
type loginLimits struct {
	PerAddr      float64       // failures an address may make at once
	PerAddrEvery time.Duration // one more failure allowed per address after this
	Total        float64       // failures all addresses together may make at once
	TotalEvery   time.Duration
	MaxAddrs     int // addresses tracked; full buckets are forgotten first
}

// defaultLoginLimits allows an admin who mistypes a few times to go on at
// once, and a guesser about 10 tries a minute per address and 60 a minute
// from all addresses together.
var defaultLoginLimits = loginLimits{
	PerAddr: 10, PerAddrEvery: 6 * time.Second,
	Total: 100, TotalEvery: time.Second,
	MaxAddrs: 10000,
}

type bucket struct {
	tokens float64
	at     time.Time
}

// refill brings b up to now at one token per every, at most max.
func (b *bucket) refill(now time.Time, max float64, every time.Duration) {
	if b.at.IsZero() {
		b.tokens, b.at = max, now
		return
	}
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(max, b.tokens+float64(d)/float64(every))
		b.at = now
	}
}

// wait is how long until b holds a whole token.
func (b *bucket) wait(every time.Duration) time.Duration {
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(every))
}

type loginLimiter struct {
	limits loginLimits
	now    func() time.Time

	mu    sync.Mutex
	total bucket
	addrs map[string]*bucket
}

func newLoginLimiter(l loginLimits, now func() time.Time) *loginLimiter {
	return &loginLimiter{limits: l, now: now, addrs: map[string]*bucket{}}
}

// clientAddr is the address the connection comes from. Forwarding headers
// are not believed: anyone can write them.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limited returns how long addr must wait before a login is looked at, or
// 0 when it may try now.
func (l *loginLimiter) limited(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.total.refill(now, l.limits.Total, l.limits.TotalEvery)
	wait := l.total.wait(l.limits.TotalEvery)
	if b := l.addrs[addr]; b != nil {
		b.refill(now, l.limits.PerAddr, l.limits.PerAddrEvery)
		wait = max(wait, b.wait(l.limits.PerAddrEvery))
	}
	return wait
}

// failed takes a token from addr's bucket and from the total.
func (l *loginLimiter) failed(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.total.refill(now, l.limits.Total, l.limits.TotalEvery)
	l.total.tokens--
	b := l.addrs[addr]
	if b == nil {
		if len(l.addrs) >= l.limits.MaxAddrs {
			l.forgetFull(now)
		}
		b = &bucket{}
		l.addrs[addr] = b
	}
	b.refill(now, l.limits.PerAddr, l.limits.PerAddrEvery)
	b.tokens--
}

// forgetFull drops the buckets that have refilled (they limit nothing);
// if every bucket is still draining, it drops them all rather than grow
// without bound: the total bucket still holds the line.
func (l *loginLimiter) forgetFull(now time.Time) {
	for a, b := range l.addrs {
		b.refill(now, l.limits.PerAddr, l.limits.PerAddrEvery)
		if b.tokens >= l.limits.PerAddr {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) >= l.limits.MaxAddrs {
		clear(l.addrs)
	}
}
