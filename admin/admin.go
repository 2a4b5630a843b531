// Package admin is what an otrdesk administrator can do to skins and their
// keys, in one place for both ways of reaching it:
//
//	otrdesk skin/keys CLI ──(serve not running)──► Local ──► store
//	otrdesk skin/keys CLI ──(serve running)──► Client ──HTTP /admin/v1──► Handler ──► Local ──► store
//
// Service is the interface both Local and Client satisfy, so the CLI does not
// care which one it holds. The HTTP API needs a bearer token, compared in
// constant time.
//
// Private keys: GenerateKey makes a DSA key, stores only its public part and
// fingerprint in the skins, and returns the private key once, already in the
// client's file format. Nothing here keeps, logs or re-sends it.
//
// API (JSON bodies, bearer token):
//
//	GET    /admin/v1/skins                list
//	POST   /admin/v1/skins                create        body: Skin
//	GET    /admin/v1/skins/{name}         show
//	PATCH  /admin/v1/skins/{name}         update        body: SkinPatch
//	DELETE /admin/v1/skins/{name}         remove
//	POST   /admin/v1/keys                 generate      body: KeyRequest  -> KeyResult (private key, once)
//	POST   /admin/v1/keys/revoke          revoke        body: {"skins": [...], "all": bool}
//	GET    /admin/v1/skins/{name}/stats   statistics    ?days=N
//	GET    /admin/v1/backup               a consistent copy of the store
//	GET    /admin/v1/skins/{name}/keyring the signed keyring, as signed   (keyring.go)
//	PUT    /admin/v1/skins/{name}/keyring store one            body: the signed bytes
package admin

import (
	"errors"
	"time"

	"otrdesk.im/otrdesk/store"
)

// Service is every administrative operation.
type Service interface {
	Skins() ([]store.Skin, error)
	Skin(name string) (store.Skin, error)
	CreateSkin(s store.Skin) (store.Skin, error)
	UpdateSkin(name string, p SkinPatch) (store.Skin, error)
	DeleteSkin(name string) error
	GenerateKey(r KeyRequest) (KeyResult, error)
	Revoke(skins []string, all bool) ([]store.Skin, error)
	Stats(name string, days int) (store.SkinStats, error)
	Keyrings
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

// KeyRequest asks for a new skin key.
type KeyRequest struct {
	Skins      []string `json:"skins,omitempty"` // the skins to key; empty with All
	All        bool     `json:"all,omitempty"`   // one key shared by every skin
	Format     string   `json:"format"`
	Accounts   []string `json:"accounts,omitempty"` // operator accounts for libotr formats and age
	Passphrase string   `json:"passphrase,omitempty"`
}

// KeyResult is the only place a private key ever appears.
type KeyResult struct {
	Fingerprint string    `json:"fingerprint"` // human form
	Skins       []string  `json:"skins"`
	Created     time.Time `json:"created"`
	Format      string    `json:"format"`
	PrivateKey  []byte    `json:"private_key"` // the key file's bytes, in Format
}

// Errors callers can test. Their texts are safe to show to anyone.
var (
	ErrUnauthorized = errors.New("admin: missing or wrong admin token")
	ErrBadRequest   = errors.New("admin: bad request")
)
