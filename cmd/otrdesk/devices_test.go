package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/omemo/wire"
)

func TestDevicesWithoutServe(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "help", "-config", cfg, "--title", "Help", "--operators", "ann@example.org")
	gajim := "B7A2C5E1 0F3D4A99 12345678 9ABCDEF0 0F1E2D3C 4B5A6978 8796A5B4 C3D2E1F0" // as Gajim shows it
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"add by ID", []string{"keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", "31415", "-config", cfg}, 0, "skin help trusts OMEMO device 31415 of ann@example.org by its ID alone, with any identity key", "run this again while serve runs (it reads the key), or with --fingerprint"},
		{"add with fingerprint", []string{"keys", "add-device", "-config", cfg, "--skin", "help", "--account", "ann@example.org", "--device", "27", "--fingerprint", gajim}, 0, "only with identity key b7a2c5e1 0f3d4a99 12345678 9abcdef0", ""},
		{"not an operator", []string{"keys", "add-device", "--skin", "help", "--account", "eve@example.org", "--device", "1", "-config", cfg}, 1, "", "not an operator of help"},
		{"no such skin", []string{"keys", "add-device", "--skin", "nope", "--account", "ann@example.org", "--device", "1", "-config", cfg}, 1, "", "nope"},
		{"bad device", []string{"keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", "0", "-config", cfg}, 2, "", "not an OMEMO device ID"},
		{"bad fingerprint", []string{"keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", "5", "--fingerprint", "05abc", "-config", cfg}, 2, "", "not an OMEMO fingerprint"},
		{"missing flags", []string{"keys", "add-device", "--skin", "help", "-config", cfg}, 2, "", "needs --skin NAME --account JID --device ID"},
		{"revoke", []string{"keys", "revoke-device", "--skin", "help", "--account", "ann@example.org", "--device", "31415", "-config", cfg}, 0, "skin help no longer trusts OMEMO device 31415", ""},
		{"revoke again", []string{"keys", "revoke-device", "--skin", "help", "--account", "ann@example.org", "--device", "31415", "-config", cfg}, 1, "", "not"},
		{"list without serve", []string{"operator", "devices", "ann@example.org", "-config", cfg}, 1, "", "serve is not running"},
		{"list without JID", []string{"operator", "devices", "-config", cfg}, 2, "", "one operator JID"},
	}
	for _, s := range steps {
		out, errOut, code := otrdesk(t, s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Fatalf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", s.name, code, s.code, out, errOut)
		}
		if code != 0 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s: error is not one line: %q", s.name, errOut)
		}
	}
	_, st := openStoreOf(t, cfg)
	defer st.Close()
	devs, err := st.Devices("help", "")
	if err != nil || len(devs) != 1 || devs[0].Device != 27 || len(devs[0].Fingerprint) != 32 || devs[0].Fingerprint[0] != 0xb7 {
		t.Fatalf("stored devices %+v, %v", devs, err)
	}
}

// While serve runs, operator devices asks it: the list comes from what
// serve's component read, with the skins that trust each device.
func TestOperatorDevicesThroughServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(minimalConfig, `listen = "127.0.0.1:8080"`, `listen = "`+ln.Addr().String()+`"`, 1)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("tok-123-0123456789abcdef0123456789\n"), 0o600)
	body += "[admin]\ntoken_file = \"" + tokenFile + "\"\n"
	cfgPath := writeConfig(t, body, "secret")
	mustRun(t, "skin", "add", "help", "-config", cfgPath, "--title", "Help", "--operators", "ann@example.org")
	mustRun(t, "keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", "11", "-config", cfgPath)
	_, st := openStoreOf(t, cfgPath)
	defer st.Close()
	var fp wire.Fingerprint
	for i := range fp {
		fp[i] = byte(i)
	}
	read := func(_ context.Context, account string) ([]admin.ReadDevice, error) {
		return []admin.ReadDevice{{ID: 11, Fingerprint: fp, HasBundle: true}, {ID: 12}}, nil
	}
	srv := &http.Server{Handler: admin.Handler(&admin.Local{Store: st, ReadDevices: read}, st, "tok-123-0123456789abcdef0123456789")}
	go srv.Serve(ln)
	defer srv.Close()

	out, errOut, code := otrdesk(t, "operator", "devices", "ann@example.org", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("operator devices: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{
		"DEVICE FINGERPRINT TRUSTED BY",
		"11 00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f help",
		"12 (no bundle: the device cannot be used) -",
	}
	if len(lines) != len(want) {
		t.Fatalf("operator devices printed:\n%s", out)
	}
	for i, l := range lines {
		if got := strings.Join(strings.Fields(l), " "); got != want[i] {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}
	// Revoking through serve changes serve's store.
	mustRun(t, "keys", "revoke-device", "--skin", "help", "--account", "ann@example.org", "--device", "11", "-config", cfgPath)
	if d, _ := st.Devices("help", ""); len(d) != 0 {
		t.Fatalf("revoked through serve, still stored: %+v", d)
	}

	// Through serve, add-device without --fingerprint records the key the
	// device publishes now and shows it as the operator's client does.
	out, errOut, code = otrdesk(t, "keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", "11", "-config", cfgPath)
	if code != 0 || !strings.Contains(out, "only with identity key 00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f") ||
		!strings.Contains(out, "Compare it with the fingerprint ann@example.org's client shows") || errOut != "" {
		t.Fatalf("add-device through serve: %d\n%s%s", code, out, errOut)
	}
	d, err := st.Devices("help", "")
	if err != nil || len(d) != 1 || string(d[0].Fingerprint) != string(fp[:]) {
		t.Fatalf("stored after add-device through serve: %+v, %v; want device 11 with its bundle's key", d, err)
	}
	// A device without a bundle has no key to trust; one the account does
	// not list is a wrong ID. Neither is stored.
	for _, c := range []struct{ device, says string }{
		{"12", "device 12 of ann@example.org has no bundle"},
		{"77", "ann@example.org publishes no OMEMO device 77"},
	} {
		_, errOut, code := otrdesk(t, "keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", c.device, "-config", cfgPath)
		if code != 1 || !strings.Contains(errOut, c.says) {
			t.Errorf("add-device %s through serve: %d %q, want it refused saying %q", c.device, code, errOut, c.says)
		}
	}
	// --fingerprint is recorded as given, as before, and not called read.
	out = mustRun(t, "keys", "add-device", "--skin", "help", "--account", "ann@example.org", "--device", "12", "--fingerprint", strings.Repeat("AB", 32), "-config", cfgPath)
	if !strings.Contains(out, "only with identity key abababab") || strings.Contains(out, "publishes now") {
		t.Fatalf("add-device --fingerprint through serve:\n%s", out)
	}
	if d, _ := st.Devices("help", ""); len(d) != 2 || d[1].Device != 12 || d[1].Fingerprint[0] != 0xab {
		t.Fatalf("stored: %+v", d)
	}
}
