package component

import "otrdesk.im/otrdesk/store"

// writes coalesces guest record writes. The router marks a record changed
// (put) instead of writing it at once; flush writes every changed record in
// one store transaction, so one fsync serves every write of a batch of
// events. Run flushes after each batch of events it handles (at most
// maxBatch; a lone event is a batch of one, written before the next event
// is read), so under a flood of new chats the store's cost per chat falls
// while an idle router still commits each change immediately
// (BenchmarkNewChatWrites measures both).
//
// Until flushed, the pending record is the truth: the lookups below read
// it before the store, so a chat closed and reopened in the same batch sees
// its own last change.
//
// The price is a short window: stanzas about a change (a new alias in a
// notice to an operator) leave before the batch is committed, so a crash in
// between loses that batch's changes, as a crash a moment earlier would
// have. A batch is at most maxBatch events already waiting, so the window
// is the time to handle them (microseconds each).
//
// The router does not wait on the store inside a batch (a bbolt Batch call
// would block the single router goroutine for its whole delay per write).
type writes struct {
	st      *store.Store
	pending map[string]store.Guest // by guest id
	order   []string               // ids in the order first changed
}

func (w *writes) init(st *store.Store) {
	w.st = st
	w.pending = map[string]store.Guest{}
}

// put records g as changed.
func (w *writes) put(g store.Guest) {
	if _, ok := w.pending[g.ID]; !ok {
		w.order = append(w.order, g.ID)
	}
	w.pending[g.ID] = g
}

// flush writes every pending record in one transaction. Records the store
// refuses are logged by the caller through the returned error; the others
// are written.
func (w *writes) flush() error {
	if len(w.order) == 0 {
		return nil
	}
	gs := make([]store.Guest, 0, len(w.order))
	for _, id := range w.order {
		gs = append(gs, w.pending[id])
	}
	if len(w.order) > maxBatch {
		// A big batch (expire retiring many chats at once): let its
		// memory go rather than keep a map that never shrinks.
		w.pending, w.order = map[string]store.Guest{}, nil
	} else {
		clear(w.pending)
		clear(w.order) // keep the array, not the ids
		w.order = w.order[:0]
	}
	return w.st.PutGuests(gs)
}

// guest returns the record of id, pending or stored.
func (w *writes) guest(id string) (store.Guest, error) {
	if g, ok := w.pending[id]; ok {
		return g, nil
	}
	return w.st.Guest(id)
}

// guestByReal returns the record of a visitor in a skin, pending or stored.
func (w *writes) guestByReal(skin, real string) (store.Guest, error) {
	for _, g := range w.pending {
		if g.Skin == skin && g.RealJID == real {
			return g, nil
		}
	}
	g, err := w.st.GuestByRealJID(skin, real)
	if err != nil {
		return g, err
	}
	if p, ok := w.pending[g.ID]; ok && (p.Skin != skin || p.RealJID != g.RealJID) {
		// The stored index still names the visitor's old JID.
		return store.Guest{}, store.ErrNotFound
	}
	return g, nil
}

// guestByResume returns the record whose resumption hash is h, pending or
// stored.
func (w *writes) guestByResume(h []byte) (store.Guest, error) {
	for _, g := range w.pending {
		if len(g.Resume) > 0 && string(g.Resume) == string(h) {
			return g, nil
		}
	}
	g, err := w.st.GuestByResume(h)
	if err != nil {
		return g, err
	}
	if p, ok := w.pending[g.ID]; ok && string(p.Resume) != string(h) {
		// Used or dropped since: the stored index is behind.
		return store.Guest{}, store.ErrNotFound
	}
	return g, nil
}

// isPending reports whether id has a change not yet written.
func (w *writes) isPending(id string) bool {
	_, ok := w.pending[id]
	return ok
}
