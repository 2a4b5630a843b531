package web

import (
	"errors"
	"net/http"

	"otrdesk.im/otrdesk/store"
)

// skinKeyring serves GET /skins/<name>.keyring: the bytes the admin signed,
// exactly as stored, for pages that pin the signer (data-signer). Nothing
// here re-encodes them: the widget checks the signature over these bytes.
// CORS is the skin JSON's, so a page that may read one may read the other;
// a missing skin or keyring is a 404 the widget can read.
func (s *server) skinKeyring(w http.ResponseWriter, r *http.Request, name string) {
	sk, ok := s.publicSkin(w, r, name)
	if !ok || skinCORS(w, r, sk) {
		return
	}
	k, err := s.cfg.Store.Keyring(name)
	if errors.Is(err, store.ErrNotFound) {
		http.Error(w, "this skin has no signed keyring", http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Error("reading keyring", "skin", name, "err", err)
		http.Error(w, "the keyring could not be read", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	// A newer keyring replaces this one at the same URL; the bytes of one
	// serial never change.
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(k.Signed)
}
