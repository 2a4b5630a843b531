package main

import (
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

func cmdSnippet(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("snippet")
	floating := fs.Bool("floating", false, "print the unpinned /widget.js form (no integrity, no fingerprint pin)")
	signer := fs.String("signer", "", "pin the admin's signer (otrdesk-signer:... or a signer key file) instead of fingerprints")
	alsoFingerprints := fs.Bool("fingerprint", false, "with --signer: pin the current fingerprints too")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("snippet needs the skin's NAME")
	}
	if *signer != "" && *floating {
		return usagef("--floating pins nothing: leave out --signer, or --floating")
	}
	if *alsoFingerprints && *signer == "" {
		return usagef("--fingerprint adds fingerprints to a --signer pin; without --signer they are pinned anyway")
	}
	cfg, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	s, err := svc.Skin(pos[0])
	if err != nil {
		return err
	}
	w, werr := web.LoadWidget(nil)
	if werr != nil && !*floating {
		return fmt.Errorf("%w (or use --floating, which needs no hash)", werr)
	}
	devs, err := svc.TrustedDevices(s.Name)
	if err != nil {
		return err
	}
	omemoKeys := admin.PublishedDevices(s, devs)
	if *signer != "" {
		return printSignedSnippet(c, svc, s, cfg, w, *signer, *alsoFingerprints, omemoKeys)
	}
	out, err := snippet(s, cfg, *floating, time.Now(), w, omemoKeys)
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, out)
	return nil
}

// snippet renders the embed HTML. The pinned form is the trust
// anchor: the page itself names the launcher's hash and the keys: the
// skin's OTR fingerprints, then the identity keys of the operators' OMEMO
// devices the skin trusts (omemoKeys).
func snippet(s store.Skin, cfg *Config, floating bool, now time.Time, w web.Widget, omemoKeys []wire.Fingerprint) (string, error) {
	base := cfg.HTTP.PublicURL
	if floating {
		return fmt.Sprintf("<script src=\"%s/widget.js\" data-skin=\"%s\" async></script>\n",
			html.EscapeString(base), html.EscapeString(s.Name)), nil
	}
	pins := pinnedKeys(s, cfg, now, omemoKeys)
	if pins == "" {
		return "", fmt.Errorf("skin %s has no key to pin: run 'otrdesk keys generate --skin %s ...' (or trust an operator's OMEMO device with 'otrdesk keys add-device') first, or use --floating", s.Name, s.Name)
	}
	return fmt.Sprintf("<script src=\"%s/widget-%s.js\" integrity=\"%s\" crossorigin=\"anonymous\"\n        data-skin=\"%s\" data-fingerprint=\"%s\" async></script>\n",
		html.EscapeString(base), w.Hash, w.SRI, html.EscapeString(s.Name), html.EscapeString(pins)), nil
}

// pinnedKeys is what a page pins for skin s in data-fingerprint, or ""
// when there is nothing to pin: the skin's published OTR fingerprints,
// each as people read it (five groups of eight upper-case hex digits),
// then the identity keys of the operators' OMEMO devices the skin trusts
// (eight groups of eight lower-case ones, as the OMEMO clients show
// them), comma-separated.
func pinnedKeys(s store.Skin, cfg *Config, now time.Time, omemoKeys []wire.Fingerprint) string {
	var out []string
	for _, f := range admin.Published(s, now, cfg.Keys.PreviousFingerprintGrace.Duration) {
		out = append(out, f.String())
	}
	for _, k := range omemoKeys {
		out = append(out, k.String())
	}
	return strings.Join(out, ",")
}

func cmdBackup(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("backup")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("backup needs the FILE to write")
	}
	cfg, err := loadConfigFlag(*cfgPath)
	if err != nil {
		return err
	}
	dst := pos[0]
	// Write beside the destination and rename, so a cut backup never
	// replaces a good one.
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".otrdesk-backup-*")
	if err != nil {
		return fmt.Errorf("creating the backup file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	var n int64
	st, err := store.Open(cfg.Store.Path)
	switch {
	case err == nil:
		n, err = st.Backup(tmp)
		st.Close()
	case errors.Is(err, store.ErrInUse) && cfg.adminToken != "":
		cl := &admin.Client{BaseURL: cfg.adminURL(), Token: cfg.adminToken, HTTP: &http.Client{Timeout: 10 * time.Minute}}
		n, err = cl.Backup(tmp)
	case errors.Is(err, store.ErrInUse):
		err = errors.New("otrdesk serve holds the store; set admin.token_file so backup can ask it for a consistent copy")
	}
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A backup must itself open as a store.
	check, err := store.Open(tmp.Name())
	if err != nil {
		return fmt.Errorf("the copy does not open as a store (%d bytes): %w", n, err)
	}
	check.Close()
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote %s (%d bytes)\n", dst, n)
	return nil
}

func cmdHealth(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("health")
	url := fs.String("url", "", "health URL (default http://<http.listen>/healthz)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("health takes no arguments")
	}
	target := *url
	if target == "" {
		cfg, err := loadConfigFlag(*cfgPath)
		if err != nil {
			return err
		}
		target = localURL(cfg.HTTP.Listen) + "/healthz"
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(target)
	if err != nil {
		return fmt.Errorf("%s does not answer: %w", target, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", target, resp.Status)
	}
	fmt.Fprintln(c.stdout, "ok")
	return nil
}
