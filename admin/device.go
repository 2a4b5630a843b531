package admin

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
)

// OMEMO devices of operators that skins trust. An operator's OMEMO
// identity keys are skin keys like OTR fingerprints: the admin lists the
// devices of the operator's account as otrdesk reads them (ListDevices,
// which needs serve: it reads them over XMPP as the skin), compares a
// fingerprint with what the operator's client shows, and trusts that
// device for a skin (AddDevice) with that identity key. A page trusts an
// operator's device only by its key (from its pins, its signed keyring or
// the skin JSON), so AddDevice records one whenever it can: the one given,
// else, while serve runs, the one the device's bundle holds now. Only
// outside serve and without a key given is a device trusted by ID alone.
//
//	GET    /admin/v1/operators/{jid}/devices   the account's devices, read now
//	GET    /admin/v1/skins/{name}/devices      the devices the skin trusts
//	POST   /admin/v1/skins/{name}/devices      trust one      body: TrustedDevice
//	DELETE /admin/v1/skins/{name}/devices/{jid}/{id}   stop trusting one

// Devices is the trusted-device part of Service.
type Devices interface {
	// AddDevice trusts an operator's device for a skin; the account must
	// be an operator of the skin. Without a fingerprint, serve reads the
	// device's identity key from its bundle and records it (refusing a
	// device that publishes none); outside serve the device is then
	// trusted by ID alone.
	AddDevice(d TrustedDevice) (TrustedDevice, error)
	// RevokeDevice stops trusting it (store.ErrNotFound: it was not).
	RevokeDevice(skin, account string, device uint32) error
	// TrustedDevices lists the devices a skin trusts.
	TrustedDevices(skin string) ([]TrustedDevice, error)
	// ListDevices reads the devices an operator's account publishes now,
	// with the skins that trust each.
	ListDevices(account string) ([]OperatorDevice, error)
}

// TrustedDevice is one operator device a skin trusts.
type TrustedDevice struct {
	Skin    string `json:"skin"`
	Account string `json:"account"`
	Device  uint32 `json:"device"`
	// Fingerprint, when set, is the only identity key the device is
	// trusted with: 64 hex digits (any form a client shows is read).
	Fingerprint string    `json:"fingerprint,omitempty"`
	Added       time.Time `json:"added,omitzero"`
}

// OperatorDevice is one device an operator's account publishes.
type OperatorDevice struct {
	Device uint32 `json:"device"`
	// Fingerprint is the identity key of its bundle, 64 hex digits; empty
	// when its bundle could not be read.
	Fingerprint string `json:"fingerprint,omitempty"`
	// TrustedBy names the skins that trust the device (with that key,
	// when their trust names one).
	TrustedBy []string `json:"trusted_by,omitempty"`
}

// ReadDevice is a device as the running component reads it.
type ReadDevice struct {
	ID          uint32
	Fingerprint wire.Fingerprint
	HasBundle   bool
}

// ErrNeedsServe: the operation reads over XMPP, which only serve does.
var ErrNeedsServe = errors.New("admin: otrdesk serve must run for this: it reads the operator's devices over XMPP as the skin (start serve, then run the command again)")

// ErrUnavailable: serve could not read the devices now.
var ErrUnavailable = errors.New("admin: the operator's devices could not be read")

// bareAccount reads an operator's account as a bare JID.
func bareAccount(s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
		return "", fmt.Errorf("%w: %q is not an operator's bare JID such as alice@example.org", ErrBadRequest, s)
	}
	return j.String(), nil
}

// readTimeout bounds reading an operator's devices.
const readTimeout = 20 * time.Second

func fromStore(d store.TrustedDevice) TrustedDevice {
	out := TrustedDevice{Skin: d.Skin, Account: d.Account, Device: d.Device, Added: d.Added}
	if d.Fingerprint != nil {
		out.Fingerprint = hex.EncodeToString(d.Fingerprint)
	}
	return out
}

// TrustedDevicesOf gives the store's trusted devices in this package's
// form, the one the admin API speaks.
func TrustedDevicesOf(devs []store.TrustedDevice) []TrustedDevice {
	out := make([]TrustedDevice, 0, len(devs))
	for _, d := range devs {
		out = append(out, fromStore(d))
	}
	return out
}

// PublishedDevices returns the OMEMO identity keys a skin vouches for to
// visitors, in its skin JSON and in the keyring the admin signs: those of
// the devices it trusts with a recorded identity key whose account is still
// one of its operators, each key once, in the order of devs.
//
// A device trusted by its ID alone is left out: nothing says which key is
// its, and a page trusts a device only by its key. So is the device of an
// account that left the skin: it gets no chats of the skin any more.
// A fingerprint that does not parse (only a broken service sends one) is
// left out too: vouching for less is the safe side.
func PublishedDevices(s store.Skin, devs []TrustedDevice) []wire.Fingerprint {
	var out []wire.Fingerprint
	for _, d := range devs {
		if d.Fingerprint == "" || !slices.Contains(s.Operators, d.Account) {
			continue
		}
		fp, err := wire.ParseFingerprint(d.Fingerprint)
		if err != nil || slices.Contains(out, fp) {
			continue
		}
		out = append(out, fp)
	}
	return out
}

func (l *Local) AddDevice(d TrustedDevice) (TrustedDevice, error) {
	sk, err := l.Store.Skin(d.Skin)
	if err != nil {
		return TrustedDevice{}, fmt.Errorf("skin %q: %w", d.Skin, err)
	}
	account, err := bareAccount(d.Account)
	if err != nil {
		return TrustedDevice{}, err
	}
	if !slices.Contains(sk.Operators, account) {
		return TrustedDevice{}, fmt.Errorf("%w: %s is not an operator of %s: add it first ('otrdesk skin set %s --operators ...')", ErrBadRequest, account, d.Skin, d.Skin)
	}
	if d.Device == 0 || d.Device > wire.MaxDeviceID {
		return TrustedDevice{}, fmt.Errorf("%w: %d is not an OMEMO device ID: clients use 1 to %d", ErrBadRequest, d.Device, wire.MaxDeviceID)
	}
	rec := store.TrustedDevice{Skin: d.Skin, Account: account, Device: d.Device, Added: l.now()}
	switch {
	case d.Fingerprint != "":
		fp, err := wire.ParseFingerprint(d.Fingerprint)
		if err != nil {
			return TrustedDevice{}, fmt.Errorf("%w: %q is not an OMEMO fingerprint: give the 64 hex digits the operator's client shows", ErrBadRequest, d.Fingerprint)
		}
		rec.Fingerprint = fp[:]
	case l.ReadDevices != nil:
		// No key given, and serve can read one: trust the key the device
		// publishes now rather than any key it may publish later. Only a
		// recorded key can go into the skin's keyring and skin JSON, which
		// is how a page comes to trust the device at all.
		fp, err := l.identityKey(account, d.Device)
		if err != nil {
			return TrustedDevice{}, err
		}
		rec.Fingerprint = fp[:]
	}
	if err := l.Store.PutDevice(rec); err != nil {
		return TrustedDevice{}, err
	}
	devs, err := l.Store.Devices(d.Skin, rec.Account)
	if err != nil {
		return TrustedDevice{}, err
	}
	for _, x := range devs {
		if x.Device == d.Device {
			return fromStore(x), nil
		}
	}
	return TrustedDevice{}, errors.New("admin: the trusted device was not stored")
}

// identityKey reads the identity key an operator's device publishes in its
// bundle now, over XMPP as a skin the operator accepted.
func (l *Local) identityKey(account string, device uint32) (wire.Fingerprint, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	read, err := l.ReadDevices(ctx, account)
	if err != nil {
		return wire.Fingerprint{}, fmt.Errorf("%w (%v): try again, or give the fingerprint the operator's client shows for the device (--fingerprint)", ErrUnavailable, err)
	}
	for _, r := range read {
		if r.ID != device {
			continue
		}
		if !r.HasBundle {
			return wire.Fingerprint{}, fmt.Errorf("%w: device %d of %s has no bundle otrdesk could read, so no identity key to trust and no way for a visitor to reach it: open that client so it publishes its keys, then try again", ErrBadRequest, device, account)
		}
		return r.Fingerprint, nil
	}
	return wire.Fingerprint{}, fmt.Errorf("%w: %s publishes no OMEMO device %d: 'otrdesk operator devices %s' lists the ones it has", ErrBadRequest, account, device, account)
}

func (l *Local) RevokeDevice(skin, account string, device uint32) error {
	return l.Store.DeleteDevice(skin, account, device)
}

func (l *Local) TrustedDevices(skin string) ([]TrustedDevice, error) {
	if _, err := l.Store.Skin(skin); err != nil {
		return nil, fmt.Errorf("skin %q: %w", skin, err)
	}
	devs, err := l.Store.Devices(skin, "")
	if err != nil {
		return nil, err
	}
	return TrustedDevicesOf(devs), nil
}

func (l *Local) ListDevices(account string) ([]OperatorDevice, error) {
	if l.ReadDevices == nil {
		return nil, ErrNeedsServe
	}
	account, err := bareAccount(account)
	if err != nil {
		return nil, err
	}
	skins, err := l.Store.Skins()
	if err != nil {
		return nil, err
	}
	var mine []string
	for _, s := range skins {
		if slices.Contains(s.Operators, account) {
			mine = append(mine, s.Name)
		}
	}
	if len(mine) == 0 {
		return nil, fmt.Errorf("%w: %s is not an operator of any skin: add it to one first ('otrdesk skin set NAME --operators ...'), so a skin holds the presence subscription its devices are read with", ErrBadRequest, account)
	}
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	read, err := l.ReadDevices(ctx, account)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	out := make([]OperatorDevice, 0, len(read))
	for _, r := range read {
		d := OperatorDevice{Device: r.ID}
		if r.HasBundle {
			d.Fingerprint = hex.EncodeToString(r.Fingerprint[:])
		}
		for _, skin := range mine {
			trusted, err := l.Store.Devices(skin, account)
			if err != nil {
				return nil, err
			}
			for _, t := range trusted {
				if t.Device == r.ID && (t.Fingerprint == nil || r.HasBundle && string(t.Fingerprint) == string(r.Fingerprint[:])) {
					d.TrustedBy = append(d.TrustedBy, skin)
				}
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// deviceRoutes adds the device endpoints to the admin API's mux.
func (h *handler) deviceRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /admin/v1/operators/{jid}/devices", h.listDevices)
	mux.HandleFunc("GET /admin/v1/skins/{name}/devices", h.trustedDevices)
	mux.HandleFunc("POST /admin/v1/skins/{name}/devices", h.addDevice)
	mux.HandleFunc("DELETE /admin/v1/skins/{name}/devices/{jid}/{id}", h.revokeDevice)
}

func (h *handler) listDevices(w http.ResponseWriter, r *http.Request) {
	out, err := h.svc.ListDevices(r.PathValue("jid"))
	h.reply(w, out, err)
}

func (h *handler) trustedDevices(w http.ResponseWriter, r *http.Request) {
	out, err := h.svc.TrustedDevices(r.PathValue("name"))
	h.reply(w, out, err)
}

func (h *handler) addDevice(w http.ResponseWriter, r *http.Request) {
	var d TrustedDevice
	if err := decode(r, &d); err != nil {
		h.reply(w, nil, err)
		return
	}
	if d.Skin != "" && d.Skin != r.PathValue("name") {
		h.reply(w, nil, fmt.Errorf("%w: the body names skin %q, the path %q", ErrBadRequest, d.Skin, r.PathValue("name")))
		return
	}
	d.Skin = r.PathValue("name")
	out, err := h.svc.AddDevice(d)
	h.reply(w, out, err)
}

func (h *handler) revokeDevice(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 32)
	if err != nil {
		h.reply(w, nil, fmt.Errorf("%w: device ID %q", ErrBadRequest, r.PathValue("id")))
		return
	}
	err = h.svc.RevokeDevice(r.PathValue("name"), r.PathValue("jid"), uint32(id))
	h.reply(w, struct{}{}, err)
}

func (c *Client) AddDevice(d TrustedDevice) (TrustedDevice, error) {
	var out TrustedDevice
	return out, c.do("POST", "/admin/v1/skins/"+url.PathEscape(d.Skin)+"/devices", d, &out)
}

func (c *Client) RevokeDevice(skin, account string, device uint32) error {
	return c.do("DELETE", "/admin/v1/skins/"+url.PathEscape(skin)+"/devices/"+url.PathEscape(account)+"/"+strconv.FormatUint(uint64(device), 10), nil, nil)
}

func (c *Client) TrustedDevices(skin string) ([]TrustedDevice, error) {
	var out []TrustedDevice
	return out, c.do("GET", "/admin/v1/skins/"+url.PathEscape(skin)+"/devices", nil, &out)
}

func (c *Client) ListDevices(account string) ([]OperatorDevice, error) {
	var out []OperatorDevice
	return out, c.do("GET", "/admin/v1/operators/"+url.PathEscape(account)+"/devices", nil, &out)
}
