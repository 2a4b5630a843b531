package component

import "time"

// bucket is a token bucket that refills perMin tokens a minute and holds at
// most perMin. The zero bucket is full. The router owns every bucket (no
// locking): one per guest for guest_messages_per_minute, one per skin for
// new_chats_per_minute and one for new_chats_per_minute_total.
//
// Anonymous JIDs cost nothing, so a limit per visitor alone is no limit: the
// new-chat buckets bound what a flood of fresh visitors can make otrdesk do
// (a store write, an alias kept until store.unassigned_retention purges it,
// an operator notified) without looking at anything that identifies a
// visitor. Over the rate, proof of work (pow.go) can stand in for a token.
type bucket struct {
	tokens float64
	at     time.Time
}

// refill adds what has accrued since the last call.
func (b *bucket) refill(now time.Time, perMin int) {
	max := float64(perMin)
	if b.at.IsZero() {
		b.tokens, b.at = max, now
		return
	}
	if now.After(b.at) {
		b.tokens += now.Sub(b.at).Minutes() * max
		b.at = now
	}
	if b.tokens > max {
		b.tokens = max
	}
}

// ok reports whether a token is there, without taking it.
func (b *bucket) ok(now time.Time, perMin int) bool {
	b.refill(now, perMin)
	return b.tokens >= 1
}

// take takes a token if there is one.
func (b *bucket) take(now time.Time, perMin int) bool {
	if !b.ok(now, perMin) {
		return false
	}
	b.tokens--
	return true
}
