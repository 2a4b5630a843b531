package main

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/keyfile"
	"otrdesk.im/otrdesk/otr"
)

const keysUsage = `usage: otrdesk keys generate (--skin NAME | --all) --format pidgin|profanity|mcabber|otrjs|age
                          [--account JID]... [--out FILE] [--passphrase-file FILE]
       otrdesk keys fingerprint FILE [--passphrase-file FILE]
       otrdesk keys install --client pidgin|profanity|mcabber --account JID --key FILE [--dir D]
       otrdesk keys revoke (--skin NAME | --all)
       otrdesk keys register (--skin NAME | --all) --public-key FILE [--passphrase-file FILE]
       otrdesk keys add-device --skin NAME --account JID --device ID [--fingerprint FP]
       otrdesk keys revoke-device --skin NAME --account JID --device ID`

func cmdKeys(c *cli, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.stderr, keysUsage)
		if len(args) == 0 {
			return usagef("name a subcommand: generate, fingerprint, install, revoke or register")
		}
		return flag.ErrHelp
	}
	sub, args := pickSubcommand(args, "generate", "fingerprint", "install", "revoke", "register", "add-device", "revoke-device")
	switch sub {
	case "generate":
		return keysGenerate(c, args)
	case "fingerprint":
		return keysFingerprint(c, args)
	case "install":
		return keysInstall(c, args)
	case "revoke":
		return keysRevoke(c, args)
	case "register":
		return keysRegister(c, args)
	case "add-device":
		return keysAddDevice(c, args)
	case "revoke-device":
		return keysRevokeDevice(c, args)
	}
	return usagef("unknown subcommand %q: use generate, fingerprint, install, revoke or register", sub)
}

// passphrase comes from a file or OTRDESK_PASSPHRASE; nothing prompts.
func passphrase(file string) (string, error) {
	if file == "" {
		return os.Getenv("OTRDESK_PASSPHRASE"), nil
	}
	return readSecret("--passphrase-file", file, "")
}

func keysGenerate(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("keys generate")
	var accounts listFlag
	targets := addSkinTargets(fs, "the skin to give its own key (repeatable)", "one key shared by every skin")
	format := fs.String("format", "", "pidgin, profanity, mcabber, otrjs or age")
	fs.Var(&accounts, "account", "operator account (bare JID) to write the key for (repeatable)")
	out := fs.String("out", "", "write the private key here (mode 0600) instead of standard output")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase for --format age (or OTRDESK_PASSPHRASE)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := targets.check("keys generate", pos); err != nil {
		return err
	}
	if *format == "" {
		return usagef("keys generate needs --format pidgin, profanity, mcabber, otrjs or age")
	}
	pass, err := passphrase(*passFile)
	if err != nil {
		return err
	}
	opts := keyfile.EncodeOptions{Format: *format, Accounts: accounts, Passphrase: pass, WorkFactor: ageWorkFactor}
	if err := checkEncodeOptions(opts); err != nil {
		return err
	}
	cfg, err := loadConfigFlag(*cfgPath)
	if err != nil {
		return err
	}
	// Refuse an existing --out before a key is made: overwriting a key file
	// could destroy the only copy of another key.
	var f *os.File
	if *out != "" {
		if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return fmt.Errorf("--out: %w (choose a new file name)", err)
		}
	}
	svc, done, err := openService(cfg)
	if err != nil {
		return cleanupOut(f, err)
	}
	defer done()
	names, err := skinNames(svc, targets.skins, *targets.all)
	if err != nil {
		return cleanupOut(f, err)
	}
	// The key is made here, on the machine running this command, also while
	// serve runs: only its public part goes to the store or the admin API.
	k, err := otr.GenerateKey(rand.Reader)
	if err != nil {
		return cleanupOut(f, err)
	}
	opts.Skins = names
	file, err := keyfile.Encode(k, opts)
	if err != nil {
		return cleanupOut(f, err)
	}
	fp := k.Fingerprint()
	reg := admin.KeyRegistration{Skins: names, PublicKey: k.PublicKey.Bytes()}
	if f == nil {
		// Standard output cannot be taken back: publish first, then show.
		if _, err := svc.RegisterKey(reg); err != nil {
			return err
		}
		_, err = c.stdout.Write(file)
		fmt.Fprintf(c.stderr, "new key for %s, fingerprint %s; the private key above is shown once: install it in each operator's client\n",
			strings.Join(names, ", "), fp)
		return err
	}
	// A file is written (and synced) before the key is published, so a
	// published key always has its private key somewhere.
	if _, err := f.Write(file); err != nil {
		return cleanupOut(f, err)
	}
	if err := f.Sync(); err != nil {
		return cleanupOut(f, err)
	}
	if _, err := svc.RegisterKey(reg); err != nil {
		return cleanupOut(f, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "new key for %s, fingerprint %s\nprivate key written once to %s (%s format): give it to the operators, then delete it\n",
		strings.Join(names, ", "), fp, *out, *format)
	return nil
}

// checkEncodeOptions says, in the command's own flags, what is wrong with
// the format, accounts and passphrase before a key is made.
func checkEncodeOptions(o keyfile.EncodeOptions) error {
	err := o.Check()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyfile.ErrUnknownFormat):
		return usagef("--format must be pidgin, profanity, mcabber, otrjs or age")
	case errors.Is(err, keyfile.ErrNeedPassphrase):
		return usagef("--format age needs a passphrase: --passphrase-file FILE or OTRDESK_PASSPHRASE")
	case errors.Is(err, keyfile.ErrBadAccount):
		return usageError{err}
	case len(o.Accounts) == 0:
		return usagef("--format %s needs --account JID for each operator account that will hold the key", o.Format)
	}
	return err
}

// skinNames resolves --skin/--all into the names of existing skins.
func skinNames(svc admin.Service, names []string, all bool) ([]string, error) {
	if !all {
		for _, n := range names {
			if _, err := svc.Skin(n); err != nil {
				return nil, fmt.Errorf("skin %q: %w", n, err)
			}
		}
		return names, nil
	}
	skins, err := svc.Skins()
	if err != nil {
		return nil, err
	}
	if len(skins) == 0 {
		return nil, errors.New("there are no skins yet: add one with 'otrdesk skin add'")
	}
	for _, s := range skins {
		names = append(names, s.Name)
	}
	return names, nil
}

func cleanupOut(f *os.File, err error) error {
	if f != nil {
		f.Close()
		os.Remove(f.Name())
	}
	return err
}

// readKeyFile reads a key file in any form keyfile.Read knows.
func readKeyFile(path, pass string) (keyfile.Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return keyfile.Keys{}, err
	}
	ks, err := keyfile.Read(b, pass)
	switch {
	case errors.Is(err, keyfile.ErrNeedPassphrase):
		return ks, fmt.Errorf("%s is a passphrase-sealed key bundle: give the passphrase with --passphrase-file FILE or OTRDESK_PASSPHRASE", path)
	case errors.Is(err, keyfile.ErrNotKeyFile):
		return ks, fmt.Errorf("%s is not an OTR private key: not an otr.private_key file, an otrdesk key bundle, or an otr.js key", path)
	}
	return ks, err
}

func keysFingerprint(c *cli, args []string) error {
	fs, _ := c.newFlags("keys fingerprint")
	passFile := fs.String("passphrase-file", "", "passphrase of an age key bundle (or OTRDESK_PASSPHRASE)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("keys fingerprint needs the key FILE")
	}
	pass, err := passphrase(*passFile)
	if err != nil {
		return err
	}
	ks, err := readKeyFile(pos[0], pass)
	if err != nil {
		return err
	}
	switch {
	case ks.Key != nil:
		fmt.Fprintln(c.stdout, ks.Key.Fingerprint())
		return nil
	case ks.Public != nil:
		fmt.Fprintln(c.stdout, ks.Public.Fingerprint())
		return nil
	case len(ks.Accounts) == 0:
		return fmt.Errorf("%s holds no key", pos[0])
	}
	accts := slices.Clone(ks.Accounts)
	slices.SortStableFunc(accts, func(a, b keyfile.Account) int {
		return strings.Compare(a.Name+"\x00"+a.Protocol, b.Name+"\x00"+b.Protocol)
	})
	for _, a := range accts {
		fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", a.Key.Fingerprint(), a.Name, a.Protocol)
	}
	return nil
}

func keysInstall(c *cli, args []string) error {
	fs, _ := c.newFlags("keys install")
	client := fs.String("client", "", "pidgin, profanity or mcabber")
	account := fs.String("account", "", "the operator's account, a bare JID exactly as the client names it")
	keyPath := fs.String("key", "", "the key file from 'otrdesk keys generate'")
	dir := fs.String("dir", "", "the client's directory (default ~/.purple, $XDG_DATA_HOME/profanity, ~/.mcabber)")
	passFile := fs.String("passphrase-file", "", "passphrase of an age key bundle (or OTRDESK_PASSPHRASE)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("keys install takes flags only, got %q", pos[0])
	}
	if *client == "" || *account == "" || *keyPath == "" {
		return usagef("keys install needs --client, --account and --key")
	}
	proto, ok := keyfile.Protocol(*client)
	if !ok {
		return usagef("--client must be pidgin, profanity or mcabber")
	}
	if err := keyfile.CheckAccount(*account); err != nil {
		return err
	}
	pass, err := passphrase(*passFile)
	if err != nil {
		return err
	}
	ks, err := readKeyFile(*keyPath, pass)
	if err != nil {
		return err
	}
	key := ks.Key
	if ks.Public != nil {
		return fmt.Errorf("%s holds only a public key: install the private key file from 'otrdesk keys generate'", *keyPath)
	}
	if key == nil {
		// A libotr file or bundle names its accounts: the key must be for this
		// one (under any client's protocol id: a bundle uses Pidgin's).
		var names []string
		for _, a := range ks.Accounts {
			if a.Name == *account {
				key = a.Key
			}
			names = append(names, a.Name)
		}
		if key == nil {
			return fmt.Errorf("%s holds keys for %s, not for %s: generate one with --account %s", *keyPath, strings.Join(names, ", "), *account, *account)
		}
	}
	target, err := keyfile.Path(*client, *account, *dir)
	if err != nil {
		return err
	}
	var f *keyfile.PrivateKeys
	old, err := os.ReadFile(target)
	switch {
	case err == nil:
		if f, err = keyfile.ParsePrivateKeys(old); err != nil {
			return fmt.Errorf("%s exists but could not be read, so it was left alone: %w", target, err)
		}
	case errors.Is(err, os.ErrNotExist):
		f = &keyfile.PrivateKeys{}
	default:
		return err
	}
	if err := f.Set(*account, proto, key); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	backup := ""
	if old != nil {
		backup = fmt.Sprintf("%s.bak-%s", target, time.Now().UTC().Format("20060102T150405Z"))
		if err := os.WriteFile(backup, old, 0o600); err != nil {
			return fmt.Errorf("backing up %s first: %w (nothing was changed)", target, err)
		}
	}
	if err := writeFileAtomic(target, f.Bytes(), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "installed the key %s for %s in %s\n", key.Fingerprint(), *account, target)
	if backup != "" {
		fmt.Fprintf(c.stdout, "the previous file is kept as %s\n", backup)
	}
	fmt.Fprintf(c.stdout, "restart %s so it reads the new key\n", *client)
	return nil
}

// writeFileAtomic writes through a temporary file and a rename, so a crash
// never leaves a half-written key file.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".otrdesk-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func keysRevoke(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("keys revoke")
	targets := addSkinTargets(fs, "the skin whose fingerprints to drop (repeatable)", "every skin")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := targets.check("keys revoke", pos); err != nil {
		return err
	}
	_, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	out, err := svc.Revoke(targets.skins, *targets.all)
	if err != nil {
		return err
	}
	for _, s := range out {
		fmt.Fprintf(c.stdout, "revoked every key of %s: its chat box shows no verified fingerprint until 'otrdesk keys generate --skin %s'\n", s.Name, s.Name)
	}
	return nil
}

// keysRegister trusts a key made elsewhere: it reads any key file otrdesk
// reads, takes its public key, and sends only that. A private part in the
// file stays on this machine.
func keysRegister(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("keys register")
	targets := addSkinTargets(fs, "the skin to give the key (repeatable)", "every skin")
	keyPath := fs.String("public-key", "", "a key file: otr.private_key with one key, otr.js key, age bundle or bare public key")
	passFile := fs.String("passphrase-file", "", "passphrase of an age key bundle (or OTRDESK_PASSPHRASE)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := targets.check("keys register", pos); err != nil {
		return err
	}
	if *keyPath == "" {
		return usagef("keys register needs --public-key FILE")
	}
	pass, err := passphrase(*passFile)
	if err != nil {
		return err
	}
	ks, err := readKeyFile(*keyPath, pass)
	if err != nil {
		return err
	}
	pubs := ks.PublicKeys()
	switch {
	case len(pubs) == 0:
		return fmt.Errorf("%s holds no key", *keyPath)
	case len(pubs) > 1:
		return fmt.Errorf("%s holds %d different keys: pass a file with the one key to register", *keyPath, len(pubs))
	}
	_, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	out, err := svc.RegisterKey(admin.KeyRegistration{Skins: targets.skins, All: *targets.all, PublicKey: pubs[0].Bytes()})
	if err != nil {
		return err
	}
	names := make([]string, len(out))
	for i, s := range out {
		names[i] = s.Name
	}
	fmt.Fprintf(c.stdout, "registered the key %s for %s: its chat boxes publish it now\n", pubs[0].Fingerprint(), strings.Join(names, ", "))
	return nil
}
