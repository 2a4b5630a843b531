package admin

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"slices"
	"time"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// Local performs the operations on an open store. OnChange, when set, is
// called after every change to skins, so a running component can
// resubscribe operators.
type Local struct {
	Store    *store.Store
	OnChange func()
	Now      func() time.Time // for tests; time.Now when nil
	// Signers, when set, are the only keys whose keyrings PutKeyring
	// stores (keys.signers in the configuration).
	Signers []ed25519.PublicKey
	// ReadDevices reads an operator account's OMEMO devices over XMPP
	// (serve's component); nil outside serve (device.go).
	ReadDevices func(ctx context.Context, account string) ([]ReadDevice, error)
}

var _ Service = (*Local)(nil)

func (l *Local) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Local) changed() {
	if l.OnChange != nil {
		l.OnChange()
	}
}

func (l *Local) Skins() ([]store.Skin, error)         { return l.Store.Skins() }
func (l *Local) Skin(name string) (store.Skin, error) { return l.Store.Skin(name) }

func (l *Local) CreateSkin(s store.Skin) (store.Skin, error) {
	if s.Policy == "" {
		s.Policy = store.PolicyOpportunistic
	}
	s.Keys = nil // keys only come from RegisterKey
	now := l.now()
	s.Created, s.Updated = now, now
	if err := l.Store.CreateSkin(s); err != nil {
		return store.Skin{}, err
	}
	l.changed()
	return l.Store.Skin(s.Name)
}

func (l *Local) UpdateSkin(name string, p SkinPatch) (store.Skin, error) {
	s, err := l.Store.UpdateSkin(name, func(s *store.Skin) error {
		p.apply(s)
		s.Updated = l.now()
		return nil
	})
	if err == nil {
		l.changed()
	}
	return s, err
}

func (l *Local) DeleteSkin(name string) error {
	if err := l.Store.DeleteSkin(name); err != nil {
		return err
	}
	l.changed()
	return nil
}

func (l *Local) Stats(name string, days int) (store.SkinStats, error) {
	if _, err := l.Store.Skin(name); err != nil {
		return store.SkinStats{}, err
	}
	if days <= 0 {
		days = 30
	}
	return l.Store.Stats(name, l.now().AddDate(0, 0, -days))
}

// targets resolves --skin/--all into skin names; every named skin must exist.
func (l *Local) targets(names []string, all bool) ([]string, error) {
	if all == (len(names) > 0) {
		return nil, fmt.Errorf("%w: name the skins or ask for all of them, not both or neither", ErrBadRequest)
	}
	if all {
		skins, err := l.Store.Skins()
		if err != nil {
			return nil, err
		}
		if len(skins) == 0 {
			return nil, fmt.Errorf("%w: there are no skins yet: add one with 'otrdesk skin add'", ErrBadRequest)
		}
		for _, s := range skins {
			names = append(names, s.Name)
		}
		return names, nil
	}
	for _, n := range names {
		if _, err := l.Store.Skin(n); err != nil {
			return nil, fmt.Errorf("skin %q: %w", n, err)
		}
	}
	return names, nil
}

// RegisterKey makes r.PublicKey the current key of the requested skins and
// retires their current keys into the history (listed during the grace
// period). A skin whose current key it already is stays as it is; a key a
// skin had before, retired or revoked, is refused: bringing back a key
// that was rotated away or revoked would trust it again silently.
func (l *Local) RegisterKey(r KeyRegistration) ([]store.Skin, error) {
	pub, rest, ok := otr.ParsePublicKey(r.PublicKey)
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%w: public_key is not an OTR DSA public key (SHORT 0x0000, then MPIs p, q, g, y, and nothing after)", ErrBadRequest)
	}
	names, err := l.targets(r.Skins, r.All)
	if err != nil {
		return nil, err
	}
	fp := pub.Fingerprint()
	for _, n := range names {
		s, err := l.Store.Skin(n)
		if err != nil {
			return nil, err
		}
		for i, k := range s.Keys {
			if k.Fingerprint == fp && (i > 0 || !k.Retired.IsZero() || k.Revoked) {
				return nil, fmt.Errorf("%w: skin %q used the key %v before and retired or revoked it: generate a new key", ErrBadRequest, n, fp)
			}
		}
	}
	now := l.now()
	var out []store.Skin
	for _, n := range names {
		s, err := l.Store.UpdateSkin(n, func(s *store.Skin) error {
			if len(s.Keys) > 0 && s.Keys[0].Fingerprint == fp && s.Keys[0].Retired.IsZero() && !s.Keys[0].Revoked {
				return nil // already the current key
			}
			for i := range s.Keys {
				if s.Keys[i].Retired.IsZero() {
					s.Keys[i].Retired = now
				}
			}
			s.Keys = slices.Insert(s.Keys, 0, store.SkinKey{
				Fingerprint: fp,
				PublicKey:   pub.Bytes(),
				Created:     now,
			})
			s.Updated = now
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("storing the key of skin %q: %w", n, err)
		}
		out = append(out, s)
	}
	l.changed()
	return out, nil
}

// Revoke drops the current and every in-grace fingerprint of the skins at
// once: the skin JSON stops listing them immediately.
func (l *Local) Revoke(names []string, all bool) ([]store.Skin, error) {
	names, err := l.targets(names, all)
	if err != nil {
		return nil, err
	}
	now := l.now()
	var out []store.Skin
	for _, n := range names {
		s, err := l.Store.UpdateSkin(n, func(s *store.Skin) error {
			for i := range s.Keys {
				if !s.Keys[i].Revoked {
					s.Keys[i].Revoked = true
					if s.Keys[i].Retired.IsZero() {
						s.Keys[i].Retired = now
					}
				}
			}
			s.Updated = now
			return nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	l.changed()
	return out, nil
}

// Published returns the fingerprints a skin's JSON lists at time now: the
// current key first, then retired (not revoked) keys still inside grace.
func Published(s store.Skin, now time.Time, grace time.Duration) []otr.Fingerprint {
	var fps []otr.Fingerprint
	for _, k := range s.Keys {
		if k.Revoked || (!k.Retired.IsZero() && now.Sub(k.Retired) > grace) {
			continue
		}
		fps = append(fps, k.Fingerprint)
	}
	return fps
}
