package admin

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
)

// fakeReader stands for serve's component: the devices an account
// publishes, and who asked.
type fakeReader struct {
	devs  map[string][]ReadDevice
	asked []string
}

func (f *fakeReader) read(_ context.Context, account string) ([]ReadDevice, error) {
	f.asked = append(f.asked, account)
	d, ok := f.devs[account]
	if !ok {
		return nil, errors.New("component: no device list")
	}
	return d, nil
}

func fingerprint(fill byte) wire.Fingerprint {
	var f wire.Fingerprint
	for i := range f {
		f[i] = fill
	}
	return f
}

func newDeviceAPI(t *testing.T, rd *fakeReader) (*store.Store, *Client) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	lots := loginLimits{PerAddr: 1e6, PerAddrEvery: time.Second, Total: 1e6, TotalEvery: time.Second, MaxAddrs: 10}
	local := &Local{Store: st, ReadDevices: rd.read}
	srv := httptest.NewServer(newHandler(local, st, "s3cret-token", newLoginLimiter(lots, time.Now)))
	t.Cleanup(srv.Close)
	c := &Client{BaseURL: srv.URL, Token: "s3cret-token", HTTP: srv.Client()}
	for _, name := range []string{"help", "sales"} {
		if _, err := c.CreateSkin(store.Skin{Name: name, Title: name, Operators: []string{"ann@example.org"}}); err != nil {
			t.Fatal(err)
		}
	}
	return st, c
}

func TestDeviceTrustThroughAPI(t *testing.T) {
	rd := &fakeReader{devs: map[string][]ReadDevice{
		"ann@example.org": {
			{ID: 11, Fingerprint: fingerprint(0xaa), HasBundle: true}, // trusted by help with this key
			{ID: 12, Fingerprint: fingerprint(0xbb), HasBundle: true}, // trusted by help with another key
			{ID: 13}, // no bundle, trusted by sales by ID
			{ID: 14, Fingerprint: fingerprint(0xcc), HasBundle: true}, // trusted by nobody
		},
	}}
	st, c := newDeviceAPI(t, rd)
	// Gajim's form: upper case, groups; it is stored as the key's bytes.
	gajim := strings.ToUpper(fingerprint(0xaa).String())
	got, err := c.AddDevice(TrustedDevice{Skin: "help", Account: "ann@example.org", Device: 11, Fingerprint: gajim})
	if err != nil || got.Fingerprint != strings.Repeat("aa", 32) || got.Device != 11 || got.Added.IsZero() {
		t.Fatalf("AddDevice = %+v, %v", got, err)
	}
	if _, err := c.AddDevice(TrustedDevice{Skin: "help", Account: "ann@example.org", Device: 12, Fingerprint: fingerprint(0x01).String()}); err != nil {
		t.Fatal(err)
	}
	// Trusted by ID alone, as a command run without serve does it.
	outside := &Local{Store: st}
	if _, err := outside.AddDevice(TrustedDevice{Skin: "sales", Account: "Ann@Example.org", Device: 13}); err != nil {
		t.Fatal(err)
	}
	aa := fingerprint(0xaa)
	if d, err := st.Devices("help", "ann@example.org"); err != nil || len(d) != 2 || string(d[0].Fingerprint) != string(aa[:]) {
		t.Fatalf("stored %+v, %v", d, err)
	}
	list, err := c.TrustedDevices("help")
	if err != nil || len(list) != 2 || list[0].Device != 11 || list[1].Device != 12 {
		t.Fatalf("TrustedDevices(help) = %+v, %v", list, err)
	}

	devs, err := c.ListDevices("ann@example.org")
	if err != nil || len(devs) != 4 {
		t.Fatalf("ListDevices = %+v, %v", devs, err)
	}
	want := map[uint32][]string{11: {"help"}, 12: nil, 13: {"sales"}, 14: nil}
	for _, d := range devs {
		if !slices.Equal(d.TrustedBy, want[d.Device]) {
			t.Errorf("device %d trusted by %v, want %v", d.Device, d.TrustedBy, want[d.Device])
		}
		if (d.Fingerprint == "") != (d.Device == 13) {
			t.Errorf("device %d fingerprint %q", d.Device, d.Fingerprint)
		}
	}

	if err := c.RevokeDevice("help", "ann@example.org", 11); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeDevice("help", "ann@example.org", 11); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	if d, _ := st.Devices("help", ""); len(d) != 1 || d[0].Device != 12 {
		t.Fatalf("after revoke: %+v", d)
	}
}

// Without a fingerprint, serve records the identity key the device's
// bundle holds now, and refuses a device it cannot read a key of: a device
// trusted by ID alone could never be in the skin's keyring or skin JSON.
func TestAddDeviceReadsTheIdentityKey(t *testing.T) {
	rd := &fakeReader{devs: map[string][]ReadDevice{
		"ann@example.org": {
			{ID: 11, Fingerprint: fingerprint(0xaa), HasBundle: true},
			{ID: 13}, // listed, but its bundle could not be read
		},
	}}
	st, c := newDeviceAPI(t, rd)
	got, err := c.AddDevice(TrustedDevice{Skin: "help", Account: "ann@example.org", Device: 11})
	if err != nil || got.Fingerprint != strings.Repeat("aa", 32) {
		t.Fatalf("AddDevice without a fingerprint = %+v, %v; want the bundle's key recorded", got, err)
	}
	// A fingerprint given is recorded as given, without a read.
	rd.asked = nil
	given := fingerprint(0x01).String()
	if got, err := c.AddDevice(TrustedDevice{Skin: "sales", Account: "ann@example.org", Device: 11, Fingerprint: given}); err != nil || got.Fingerprint != strings.Repeat("01", 32) || len(rd.asked) != 0 {
		t.Fatalf("AddDevice with a fingerprint = %+v, %v, read %v", got, err, rd.asked)
	}
	// carol's devices cannot be read at all.
	if _, err := c.UpdateSkin("help", SkinPatch{Operators: &[]string{"ann@example.org", "carol@example.org"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, account string
		device        uint32
		says          string
	}{
		{"no bundle", "ann@example.org", 13, "has no bundle"},
		{"not listed", "ann@example.org", 99, "publishes no OMEMO device 99"},
		{"unreadable", "carol@example.org", 1, "could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.AddDevice(TrustedDevice{Skin: "help", Account: tc.account, Device: tc.device})
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("AddDevice = %v, want an error saying %q", err, tc.says)
			}
		})
	}
	devs, err := st.Devices("help", "")
	if err != nil || len(devs) != 1 || devs[0].Device != 11 {
		t.Fatalf("help trusts %+v, %v; want device 11 alone", devs, err)
	}
}

func TestPublishedDevices(t *testing.T) {
	hexOf := func(fill byte) string { f := fingerprint(fill); return hex.EncodeToString(f[:]) }
	skin := store.Skin{Name: "help", Operators: []string{"ann@example.org", "bob@example.org"}}
	devs := []TrustedDevice{
		{Account: "ann@example.org", Device: 1, Fingerprint: hexOf(0xaa)},
		{Account: "ann@example.org", Device: 2}, // by ID alone
		{Account: "bob@example.org", Device: 3, Fingerprint: hexOf(0xbb)},
		{Account: "bob@example.org", Device: 4, Fingerprint: hexOf(0xaa)},        // the same key again
		{Account: "eve@example.org", Device: 5, Fingerprint: hexOf(0xcc)},        // no longer an operator
		{Account: "ann@example.org", Device: 6, Fingerprint: "not a key at all"}, // a broken service
	}
	var got []string
	for _, f := range PublishedDevices(skin, devs) {
		got = append(got, f.String())
	}
	want := []string{fingerprint(0xaa).String(), fingerprint(0xbb).String()}
	if !slices.Equal(got, want) {
		t.Fatalf("PublishedDevices = %q, want %q", got, want)
	}
	if keys := PublishedDevices(skin, nil); len(keys) != 0 {
		t.Fatalf("no devices: %v", keys)
	}
}

func TestDeviceTrustRefusals(t *testing.T) {
	rd := &fakeReader{devs: map[string][]ReadDevice{}}
	st, c := newDeviceAPI(t, rd)
	for _, tc := range []struct {
		name     string
		d        TrustedDevice
		sentinel error
	}{
		{"not an operator of the skin", TrustedDevice{Skin: "help", Account: "eve@example.org", Device: 1}, ErrBadRequest},
		{"no such skin", TrustedDevice{Skin: "nope", Account: "ann@example.org", Device: 1}, store.ErrNotFound},
		{"bad fingerprint", TrustedDevice{Skin: "help", Account: "ann@example.org", Device: 1, Fingerprint: "05ab"}, ErrBadRequest},
		{"device 0", TrustedDevice{Skin: "help", Account: "ann@example.org", Device: 0}, ErrBadRequest},
		{"full JID", TrustedDevice{Skin: "help", Account: "ann@example.org/phone", Device: 1}, ErrBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.AddDevice(tc.d); !errors.Is(err, tc.sentinel) {
				t.Fatalf("AddDevice = %v, want %v", err, tc.sentinel)
			}
		})
	}
	if d, _ := st.AllDevices(); len(d) != 0 {
		t.Fatalf("refused devices stored: %+v", d)
	}
	// An account that is no operator is not read at all.
	if _, err := c.ListDevices("eve@example.org"); !errors.Is(err, ErrBadRequest) || len(rd.asked) != 0 {
		t.Fatalf("ListDevices(stranger) = %v, asked %v", err, rd.asked)
	}
	// An operator whose devices cannot be read.
	if _, err := c.ListDevices("ann@example.org"); err == nil || !strings.Contains(err.Error(), "could not be read") {
		t.Fatalf("ListDevices(unreadable) = %v", err)
	}
	// Without serve there is nothing to read with.
	l := &Local{Store: st}
	if _, err := l.ListDevices("ann@example.org"); !errors.Is(err, ErrNeedsServe) {
		t.Fatalf("ListDevices without serve = %v", err)
	}
}

func TestDeviceAPINeedsToken(t *testing.T) {
	rd := &fakeReader{}
	_, c := newDeviceAPI(t, rd)
	for _, r := range []struct{ method, path string }{
		{"GET", "/admin/v1/operators/ann@example.org/devices"},
		{"GET", "/admin/v1/skins/help/devices"},
		{"POST", "/admin/v1/skins/help/devices"},
		{"DELETE", "/admin/v1/skins/help/devices/ann@example.org/1"},
	} {
		req, _ := http.NewRequest(r.method, c.BaseURL+r.path, strings.NewReader(`{"account":"ann@example.org","device":1}`))
		resp, err := c.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d", r.method, r.path, resp.StatusCode)
		}
	}
	if len(rd.asked) != 0 {
		t.Fatalf("devices read without a token: %v", rd.asked)
	}
}
