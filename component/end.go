package component

import (
	"time"

	"otrdesk.im/otrdesk/store"
)

// The end of a chat: ended by the visitor or an operator, or gone idle; and
// the periodic work of the router's clock (expire).

// endChat ends a chat: tells both sides, records metadata, forgets it.
func (r *router) endChat(ch *chat, why string) {
	if ch.rec.State == stateAssigned {
		r.send(toks{}.start(nsAccept, "message", "from", r.aliasJID(ch.rec.ID), "to", ch.rec.Operator, "type", "chat").
			text("", "body", []byte("This chat has ended: "+why+".")).end(nsAccept, "message"))
	}
	r.sendStatus(ch, stateEnded, 0, "")
	// An ended chat is not resumed: its secret goes with it.
	ch.resume, ch.rec.Resume = "", nil
	r.retire(ch, stateEnded)
}

// retire takes a chat out of memory as ended or idle, keeping its record
// (with its pin when idle) for the retention purge.
func (r *router) retire(ch *chat, state string) {
	r.closeChat(ch, state)
	r.assignQueued()
}

// closeChat is retire without giving the freed operator a queued chat.
func (r *router) closeChat(ch *chat, state string) {
	if ch.rec.State == stateAssigned {
		r.record(ch)
	}
	ch.close(state)
	r.save(ch)
	r.log.Info("guest inactive", "skin", ch.rec.Skin, "alias", ch.alias(), "state", state)
}

// record adds the chat's statistics (metadata only).
func (r *router) record(ch *chat) {
	start := ch.rec.Queued
	if start.IsZero() {
		start = ch.rec.Created
	}
	rec := store.ChatRecord{
		Skin:      ch.rec.Skin,
		Start:     start,
		Wait:      max(ch.rec.Assigned.Sub(start), 0),
		Duration:  max(ch.rec.LastActive.Sub(ch.rec.Assigned), 0),
		Encrypted: ch.encrypted,
	}
	if err := r.st.RecordChat(rec); err != nil {
		r.log.Error("recording chat", "skin", ch.rec.Skin, "err", err)
	}
}

// expire runs on the router's clock: it restarts stalled AKEs, re-queues
// chats whose operator stayed silent after a reconnect, forgets ended
// blocks, retires chats idle for longer than guest_idle_timeout and, now
// and then, purges the records of chats that never reached an operator.
func (r *router) expire(now time.Time) {
	r.checkStalls(now)
	r.expireOMEMO(now)
	if !r.sweepAt.IsZero() && !now.Before(r.sweepAt) && r.out != nil {
		r.sweepAt = time.Time{}
		r.sweep()
	}
	expired := false
	for k, until := range r.blocked {
		if !now.Before(until) {
			delete(r.blocked, k)
			expired = true
		}
	}
	if expired {
		if _, err := r.st.PurgeBlocks(now); err != nil {
			r.log.Error("dropping ended blocks", "err", err)
		}
	}
	if r.pow != nil {
		r.pow.expire(now)
	}
	// Retire every idle chat before giving freed operators queued ones: a
	// queued chat that is itself idle goes too, instead of reaching an
	// operator on its way out.
	idle := false
	for _, ch := range r.chats {
		if now.Sub(ch.rec.LastActive) >= r.cfg.GuestIdleTimeout {
			r.closeChat(ch, stateIdle)
			idle = true
		}
	}
	if idle {
		r.assignQueued()
	}
	r.flush()
	if !now.Before(r.purgeAt) {
		r.purgeAt = now.Add(purgeEvery(r.cfg.UnassignedRetention))
		r.purgeUnassigned(now)
	}
}

// purgeEvery is how often the unassigned purge runs: a quarter of the
// retention, within [10s, 15m], so a record outlives it by at most that.
func purgeEvery(retention time.Duration) time.Duration {
	return min(max(retention/4, 10*time.Second), 15*time.Minute)
}

// purgeUnassigned deletes the records of chats that never reached an
// operator and have been quiet for store.unassigned_retention, except
// chats still active. Each costs otrdesk a store record and an alias
// until then; a flood of new chats leaves nothing else behind.
func (r *router) purgeUnassigned(now time.Time) {
	n, err := r.st.PurgeUnassignedGuests(now.Add(-r.cfg.UnassignedRetention), func(id string) bool {
		return r.chats[id] != nil || r.writes.isPending(id)
	})
	switch {
	case err != nil:
		r.log.Error("purging chats that never reached an operator", "err", err)
	case n > 0:
		r.log.Info("purged chats that never reached an operator", "count", n)
	}
}
