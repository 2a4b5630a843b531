// Package admin is what an otrdesk administrator can do to skins and their
// keys, in one place for both ways of reaching it:
//
//	otrdesk skin/keys CLI ──(serve not running)──► Local ──► store
//	otrdesk skin/keys CLI ──(serve running)──► Client ──HTTP /admin/v1──► Handler ──► Local ──► store
//
// Service is the interface both Local and Client satisfy, so the CLI does not
// care which one it holds. The HTTP API needs a bearer token (at least 32
// bytes; the configuration refuses less), compared in constant time; failed
// logins are limited per client address and in total, and over the limit
// every request gets 429 with Retry-After, the right token included
// (ratelimit.go). serve can put the API on a listener of its own
// (admin.listen), away from the public one.
//
// Private keys never come here. `otrdesk keys generate` makes a skin's DSA
// key on the machine where the command runs, writes the private key there
// in the client's file format, and hands this package only the public key
// (RegisterKey), which the skins publish. So a running service, its admin
// API, its log and its store never see a private key, even when the CLI
// talks to serve over HTTP.
//
// API (JSON bodies, bearer token):
//
//	GET    /admin/v1/skins                list
//	POST   /admin/v1/skins                create        body: Skin
//	GET    /admin/v1/skins/{name}         show
//	PATCH  /admin/v1/skins/{name}         update        body: SkinPatch
//	DELETE /admin/v1/skins/{name}         remove
//	POST   /admin/v1/keys/register        trust a key   body: KeyRegistration -> the skins
//	POST   /admin/v1/keys/revoke          revoke        body: {"skins": [...], "all": bool}
//	GET    /admin/v1/skins/{name}/stats   statistics    ?days=N
//	GET    /admin/v1/backup               a consistent copy of the store
//	GET    /admin/v1/skins/{name}/keyring the signed keyring, as signed   (keyring.go)
//	PUT    /admin/v1/skins/{name}/keyring store one            body: the signed bytes
//	GET    /admin/v1/operators/{jid}/devices  an operator's OMEMO devices, read now   (device.go)
//	GET    /admin/v1/skins/{name}/devices     the OMEMO devices the skin trusts
//	POST   /admin/v1/skins/{name}/devices     trust one        body: TrustedDevice
//	DELETE /admin/v1/skins/{name}/devices/{jid}/{id}  stop trusting one
//
// POST /admin/v1/keys, where an older otrdesk asked serve to generate a
// key, answers 410 Gone: a private key made by the service would pass
// through it.
package admin

import (
	"errors"

	"otrdesk.im/otrdesk/store"
)

// Service is every administrative operation.
type Service interface {
	Skins() ([]store.Skin, error)
	Skin(name string) (store.Skin, error)
	CreateSkin(s store.Skin) (store.Skin, error)
	UpdateSkin(name string, p SkinPatch) (store.Skin, error)
	DeleteSkin(name string) error
	RegisterKey(r KeyRegistration) ([]store.Skin, error)
	Revoke(skins []string, all bool) ([]store.Skin, error)
	Stats(name string, days int) (store.SkinStats, error)
	Keyrings
	Devices
}

// SkinPatch changes the fields that are set and leaves the others.
type SkinPatch struct {
	Title         *string           `json:"title,omitempty"`
	Greeting      *string           `json:"greeting,omitempty"`
	Color         *string           `json:"color,omitempty"`
	Policy        *store.Policy     `json:"policy,omitempty"`
	Operators     *[]string         `json:"operators,omitempty"`
	OperatorNames map[string]string `json:"operator_names,omitempty"` // merged; an empty name removes
	Origins       *[]string         `json:"origins,omitempty"`
}

func (p SkinPatch) apply(s *store.Skin) {
	if p.Title != nil {
		s.Title = *p.Title
	}
	if p.Greeting != nil {
		s.Greeting = *p.Greeting
	}
	if p.Color != nil {
		s.Color = *p.Color
	}
	if p.Policy != nil {
		s.Policy = *p.Policy
	}
	if p.Operators != nil {
		s.Operators = append([]string(nil), (*p.Operators)...)
	}
	if p.Origins != nil {
		s.Origins = append([]string(nil), (*p.Origins)...)
	}
	for j, n := range p.OperatorNames {
		if s.OperatorNames == nil {
			s.OperatorNames = map[string]string{}
		}
		if n == "" {
			delete(s.OperatorNames, j)
		} else {
			s.OperatorNames[j] = n
		}
	}
}

// KeyRegistration makes a public key the current key of skins.
type KeyRegistration struct {
	Skins []string `json:"skins,omitempty"` // the skins to key; empty with All
	All   bool     `json:"all,omitempty"`   // every skin
	// PublicKey is the OTR encoding of the public key: SHORT 0x0000 then
	// MPIs p, q, g, y (otr.PublicKey.Bytes; base64 in JSON). Anything more,
	// such as a private exponent after it, is refused.
	PublicKey []byte `json:"public_key"`
}

// Errors callers can test. Their texts are safe to show to anyone.
var (
	ErrUnauthorized    = errors.New("admin: missing or wrong admin token")
	ErrBadRequest      = errors.New("admin: bad request")
	ErrTooManyFailures = errors.New("admin: too many failed admin logins: wait before trying again (the right token is refused too until then)")
	ErrGone            = errors.New("admin: this otrdesk no longer generates keys in the service: run 'otrdesk keys generate' from the same version as serve, it makes the key where it runs and sends only the public key")
)
