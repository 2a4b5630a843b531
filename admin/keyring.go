package admin

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"

	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/store"
)

// Keyrings is the part of the admin operations that handles signed
// keyrings. The admin signs a keyring on their own machine with a key the
// service never sees; only the signed bytes come here, and they are kept
// and served exactly as they arrived.
//
//	GET /admin/v1/skins/{name}/keyring   the stored keyring, as signed (text/plain)
//	PUT /admin/v1/skins/{name}/keyring   store one             body: the signed bytes -> store.Keyring
type Keyrings interface {
	// PutKeyring stores a signed keyring for the named skin. It must parse,
	// name that skin, and have a serial above the stored one. Who signed it
	// is checked only when the service knows the signers (keys.signers):
	// the signer that counts is the one in the pages that embed the chat,
	// and the widget checks it there.
	PutKeyring(name string, signed []byte) (store.Keyring, error)
	// Keyring returns the skin's stored keyring (store.ErrNotFound: none).
	Keyring(name string) (store.Keyring, error)
}

// PutKeyring implements Keyrings.
func (l *Local) PutKeyring(name string, signed []byte) (store.Keyring, error) {
	k, err := keyring.Parse(signed)
	if err != nil {
		return store.Keyring{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	if k.Skin != name {
		return store.Keyring{}, fmt.Errorf("%w: the keyring is signed for skin %q, not %q", ErrBadRequest, k.Skin, name)
	}
	if len(l.Signers) > 0 && !slices.ContainsFunc(l.Signers, func(pub ed25519.PublicKey) bool { return k.Verify(pub) == nil }) {
		return store.Keyring{}, fmt.Errorf("%w: the keyring is not signed by any signer in keys.signers: sign it with one of them, or add its signer there", ErrBadRequest)
	}
	out, err := l.Store.PutKeyring(signed)
	if err == nil {
		l.changed()
	}
	return out, err
}

// Keyring implements Keyrings.
func (l *Local) Keyring(name string) (store.Keyring, error) { return l.Store.Keyring(name) }

// PutKeyring implements Keyrings: it sends the signed bytes as they are.
func (c *Client) PutKeyring(name string, signed []byte) (store.Keyring, error) {
	var out store.Keyring
	resp, err := c.raw("PUT", "/admin/v1/skins/"+url.PathEscape(name)+"/keyring", signed)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	return out, json.NewDecoder(io.LimitReader(resp.Body, 2*keyring.MaxSize)).Decode(&out)
}

// Keyring implements Keyrings. The bytes come from the service, so they
// are parsed here again before anything is read from them.
func (c *Client) Keyring(name string) (store.Keyring, error) {
	resp, err := c.raw("GET", "/admin/v1/skins/"+url.PathEscape(name)+"/keyring", nil)
	if err != nil {
		return store.Keyring{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, keyring.MaxSize+1))
	if err != nil {
		return store.Keyring{}, fmt.Errorf("admin: reading the keyring of skin %s: %w", name, err)
	}
	k, err := keyring.Parse(b)
	if err != nil {
		return store.Keyring{}, fmt.Errorf("admin: the service's keyring of skin %s: %w", name, err)
	}
	return store.Keyring{Skin: k.Skin, Serial: k.Serial, NotAfter: k.NotAfter, Signed: b}, nil
}

// raw sends body (nil: none) as text and returns a 200 response, or the
// API's error turned back into its sentinel.
func (c *Client) raw(method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.BaseURL+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin: reaching otrdesk serve at %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e errorBody
		_ = json.NewDecoder(io.LimitReader(resp.Body, maxRequestBytes)).Decode(&e)
		return nil, remoteError(resp.StatusCode, e)
	}
	return resp, nil
}

// keyringRoutes adds the keyring endpoints to the admin API's mux.
func (h *handler) keyringRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/v1/skins/{name}/keyring", h.getKeyring)
	mux.HandleFunc("PUT /admin/v1/skins/{name}/keyring", h.putKeyring)
}

func (h *handler) getKeyring(w http.ResponseWriter, r *http.Request) {
	k, err := h.svc.Keyring(r.PathValue("name"))
	if err != nil {
		h.reply(w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(k.Signed)
}

func (h *handler) putKeyring(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, keyring.MaxSize+1))
	if err != nil {
		h.reply(w, nil, fmt.Errorf("%w: reading the keyring: %v", ErrBadRequest, err))
		return
	}
	if len(b) > keyring.MaxSize {
		h.reply(w, nil, fmt.Errorf("%w: a keyring is at most %d bytes", ErrBadRequest, keyring.MaxSize))
		return
	}
	out, err := h.svc.PutKeyring(r.PathValue("name"), b)
	h.reply(w, out, err)
}
