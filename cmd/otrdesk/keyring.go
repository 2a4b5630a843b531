package main

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"slices"
	"strings"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// defaultKeyringValid is how long a signed keyring is valid unless --valid
// says otherwise. Two weeks: long enough to sign by hand every week with
// room to spare, short enough that a keyring the service replays after a
// revocation stops working soon.
const defaultKeyringValid = 14 * 24 * time.Hour

func cmdKeyring(c *cli, args []string) error {
	if len(args) == 0 {
		return usagef("keyring needs a subcommand: sign or show")
	}
	switch args[0] {
	case "sign":
		return keyringSign(c, args[1:])
	case "show":
		return keyringShow(c, args[1:])
	}
	return usagef("unknown subcommand %q: use sign or show", args[0])
}

// keyringSign signs, on this machine, the keyring of each named skin and
// hands only the signed bytes to the service (its admin API while serve
// runs, else the store).
func keyringSign(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("keyring sign")
	which := addSkinTargets(fs, "skin to sign the keyring of (repeatable, or comma-separated)", "sign the keyring of every skin")
	signerFile := fs.String("signer", "", "the signing key file made by 'otrdesk signer generate'")
	passFile := fs.String("passphrase-file", "", "passphrase of an encrypted signing key (or OTRDESK_PASSPHRASE)")
	valid := fs.Duration("valid", defaultKeyringValid, "how long the keyring stays valid")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := which.check("keyring sign", pos); err != nil {
		return err
	}
	if *signerFile == "" {
		return usagef("keyring sign needs --signer FILE: the signing key made by 'otrdesk signer generate'")
	}
	if *valid <= 0 {
		return usagef("--valid %v: give a positive duration such as 336h", *valid)
	}
	// The key is read before anything else is touched: a wrong passphrase
	// changes nothing anywhere.
	priv, err := signerPrivate(*signerFile, *passFile)
	if err != nil {
		return err
	}
	cfg, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	var targets []store.Skin
	if *which.all {
		if targets, err = svc.Skins(); err != nil {
			return err
		}
		if len(targets) == 0 {
			return errors.New("there are no skins yet: add one with 'otrdesk skin add'")
		}
	} else {
		for _, n := range which.skins {
			s, err := svc.Skin(n)
			if err != nil {
				return err
			}
			targets = append(targets, s)
		}
	}
	for _, s := range targets {
		now := time.Now()
		prev := uint64(0)
		if k, err := svc.Keyring(s.Name); err == nil {
			prev = k.Serial
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		devs, err := svc.TrustedDevices(s.Name)
		if err != nil {
			return fmt.Errorf("reading the OMEMO devices skin %s trusts: %w", s.Name, err)
		}
		k, err := buildKeyring(s, devs, prev, now, *valid, cfg.Keys.PreviousFingerprintGrace.Duration)
		if err != nil {
			return err
		}
		signed, err := keyring.Sign(k, priv)
		if err != nil {
			return err
		}
		if _, err := svc.PutKeyring(s.Name, signed); err != nil {
			return fmt.Errorf("storing the keyring of skin %s: %w", s.Name, err)
		}
		fmt.Fprintf(c.stdout, "signed the keyring of skin %s: serial %d, %d key(s), valid until %s\n",
			s.Name, k.Serial, len(k.Keys), k.NotAfter.Format(time.RFC3339))
		switch {
		case len(k.Keys) == 0:
			fmt.Fprintf(c.stderr, "otrdesk keyring sign: skin %s has no current key: pages that pin the signer verify no operator until a key is made and the keyring signed again\n", s.Name)
		case len(k.OTRFingerprints()) == 0:
			fmt.Fprintf(c.stderr, "otrdesk keyring sign: skin %s has no current OTR key: pages that pin the signer verify only OMEMO chats until 'otrdesk keys generate --skin %s ...' makes one and the keyring is signed again\n", s.Name, s.Name)
		}
		warnDevicesLeftOut(c, s, devs)
	}
	return nil
}

// warnDevicesLeftOut names, on stderr, each OMEMO device the skin trusts
// that its keyring cannot vouch for, and what makes it count.
func warnDevicesLeftOut(c *cli, s store.Skin, devs []admin.TrustedDevice) {
	for _, d := range devs {
		switch {
		case !slices.Contains(s.Operators, d.Account):
			fmt.Fprintf(c.stderr, "otrdesk keyring sign: skin %s still trusts OMEMO device %d of %s, which is no longer its operator: left out of the keyring; forget it with 'otrdesk keys revoke-device --skin %s --account %s --device %d'\n",
				s.Name, d.Device, d.Account, s.Name, d.Account, d.Device)
		case d.Fingerprint == "":
			fmt.Fprintf(c.stderr, "otrdesk keyring sign: skin %s trusts OMEMO device %d of %s without a recorded identity key, so the keyring cannot vouch for it: run 'otrdesk keys add-device --skin %s --account %s --device %d' while serve runs (it reads the key), or with --fingerprint as the operator's client shows it, then sign again\n",
				s.Name, d.Device, d.Account, s.Name, d.Account, d.Device)
		}
	}
}

// buildKeyring is the keyring of a skin at now: the keys the skin JSON
// publishes. First the OTR fingerprints (current, then retired ones still
// in grace; revoked ones never), then one omemo key per OMEMO device the
// skin trusts with a recorded identity key (admin.PublishedDevices), as 64
// lower-case hex digits: the widget trusts an operator's device only by
// that key, so a device trusted by ID alone cannot be listed.
//
// The serial is the larger of the previous serial plus one and the current
// Unix time in seconds. Plus one makes it grow even when two keyrings are
// signed in the same second; the clock keeps it growing when the service
// lost its copy of the previous keyring (a restored backup, a new store),
// since browsers refuse any serial below the highest they have seen.
func buildKeyring(s store.Skin, devs []admin.TrustedDevice, prevSerial uint64, now time.Time, valid, grace time.Duration) (keyring.Keyring, error) {
	serial := prevSerial + 1
	if t := now.Unix(); t > 0 && uint64(t) > serial {
		serial = uint64(t)
	}
	if prevSerial == ^uint64(0) {
		return keyring.Keyring{}, fmt.Errorf("skin %s: the keyring serial cannot grow past %d", s.Name, prevSerial)
	}
	k := keyring.Keyring{Skin: s.Name, Serial: serial, NotAfter: now.Add(valid).UTC().Truncate(time.Second)}
	for _, f := range admin.Published(s, now, grace) {
		k.Keys = append(k.Keys, keyring.Key{Kind: keyring.KindOTR, Value: strings.ToUpper(f.Hex())})
	}
	for _, f := range admin.PublishedDevices(s, devs) {
		k.Keys = append(k.Keys, keyring.Key{Kind: keyring.KindOMEMO, Value: hex.EncodeToString(f[:])})
	}
	return k, nil
}

// keyringShow prints a skin's keyring as served, when it expires, and,
// with --signer, whether its signature verifies.
func keyringShow(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("keyring show")
	signer := fs.String("signer", "", "check the signature with this signer (otrdesk-signer:... or a signer key file)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("keyring show needs the skin's NAME")
	}
	var pub ed25519.PublicKey
	if *signer != "" {
		if pub, err = signerPublic(*signer); err != nil {
			return err
		}
	}
	_, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	k, err := svc.Keyring(pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("skin %s has no signed keyring: sign one with 'otrdesk keyring sign --skin %s --signer FILE'", pos[0], pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, string(k.Signed))
	now := time.Now()
	if left := k.NotAfter.Sub(now); left >= 0 {
		fmt.Fprintf(c.stdout, "expires %s (in %s)\n", k.NotAfter.Format(time.RFC3339), roundDuration(left))
	} else {
		fmt.Fprintf(c.stdout, "EXPIRED %s (%s ago): pages that pin the signer verify no key of this skin; sign a new keyring\n", k.NotAfter.Format(time.RFC3339), roundDuration(-left))
	}
	if pub == nil {
		return nil
	}
	s, err := keyring.Parse(k.Signed)
	if err != nil {
		return err
	}
	if err := s.Verify(pub); err != nil {
		return fmt.Errorf("the keyring of skin %s is NOT signed by %s (fingerprint %s)", pos[0], keyring.FormatSigner(pub), keyring.SignerFingerprint(pub))
	}
	fmt.Fprintf(c.stdout, "signature verifies with %s (fingerprint %s)\n", keyring.FormatSigner(pub), keyring.SignerFingerprint(pub))
	return nil
}

// roundDuration shows a duration to the minute, or in days past two days.
func roundDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Minute).String()
}

// snippetSigned renders the pinned embed that trusts the admin's signer:
// the page verifies the skin's keyring with it, so key rotation and
// revocation need no edit of the page. With fingerprints, the page pins
// the current fingerprints as well (it then trusts the keys of both pins).
func snippetSigned(s store.Skin, cfg *Config, now time.Time, w web.Widget, signer ed25519.PublicKey, fingerprints bool, omemoKeys []wire.Fingerprint) (string, error) {
	pins := fmt.Sprintf(" data-signer=\"%s\"", html.EscapeString(keyring.FormatSigner(signer)))
	if fingerprints {
		keys := pinnedKeys(s, cfg, now, omemoKeys)
		if keys == "" {
			return "", fmt.Errorf("skin %s has no key to pin: run 'otrdesk keys generate --skin %s ...' first, or leave out --fingerprint", s.Name, s.Name)
		}
		pins += fmt.Sprintf(" data-fingerprint=\"%s\"", html.EscapeString(keys))
	}
	return fmt.Sprintf("<script src=\"%s/widget-%s.js\" integrity=\"%s\" crossorigin=\"anonymous\"\n        data-skin=\"%s\"%s async></script>\n",
		html.EscapeString(cfg.HTTP.PublicURL), w.Hash, w.SRI, html.EscapeString(s.Name), pins), nil
}

// printSignedSnippet prints the --signer form of the snippet, and warns
// when the skin has no keyring yet (such a page verifies no operator).
func printSignedSnippet(c *cli, svc admin.Service, s store.Skin, cfg *Config, w web.Widget, signerArg string, fingerprints bool, omemoKeys []wire.Fingerprint) error {
	pub, err := signerPublic(signerArg)
	if err != nil {
		return err
	}
	out, err := snippetSigned(s, cfg, time.Now(), w, pub, fingerprints, omemoKeys)
	if err != nil {
		return err
	}
	fmt.Fprint(c.stdout, out)
	if _, err := svc.Keyring(s.Name); errors.Is(err, store.ErrNotFound) {
		fmt.Fprintf(c.stderr, "otrdesk snippet: skin %s has no signed keyring yet, so this page will verify no operator: run 'otrdesk keyring sign --skin %s --signer FILE'\n", s.Name, s.Name)
	}
	return nil
}
