package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/otr"
)

const keysUsage = `usage: otrdesk keys generate (--skin NAME | --all) --format pidgin|profanity|mcabber|otrjs|age
                          [--account JID]... [--out FILE] [--passphrase-file FILE]
       otrdesk keys fingerprint FILE [--passphrase-file FILE]
       otrdesk keys install --client pidgin|profanity|mcabber --account JID --key FILE [--dir D]
       otrdesk keys revoke (--skin NAME | --all)`

func cmdKeys(c *cli, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(c.stderr, keysUsage)
		if len(args) == 0 {
			return usagef("name a subcommand: generate, fingerprint, install or revoke")
		}
		return flag.ErrHelp
	}
	sub, args := pickSubcommand(args, "generate", "fingerprint", "install", "revoke")
	switch sub {
	case "generate":
		return keysGenerate(c, args)
	case "fingerprint":
		return keysFingerprint(c, args)
	case "install":
		return keysInstall(c, args)
	case "revoke":
		return keysRevoke(c, args)
	}
	return usagef("unknown subcommand %q: use generate, fingerprint, install or revoke", sub)
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
	var skins, accounts listFlag
	fs.Var(&skins, "skin", "the skin to give its own key (repeatable)")
	all := fs.Bool("all", false, "one key shared by every skin")
	format := fs.String("format", "", "pidgin, profanity, mcabber, otrjs or age")
	fs.Var(&accounts, "account", "operator account (bare JID) to write the key for (repeatable)")
	out := fs.String("out", "", "write the private key here (mode 0600) instead of standard output")
	passFile := fs.String("passphrase-file", "", "file holding the passphrase for --format age (or OTRDESK_PASSPHRASE)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("keys generate takes flags only, got %q", pos[0])
	}
	if *all == (len(skins) > 0) {
		return usagef("keys generate needs --skin NAME or --all (one of them)")
	}
	if *format == "" {
		return usagef("keys generate needs --format pidgin, profanity, mcabber, otrjs or age")
	}
	pass, err := passphrase(*passFile)
	if err != nil {
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
	res, err := svc.GenerateKey(admin.KeyRequest{Skins: skins, All: *all, Format: *format, Accounts: accounts, Passphrase: pass})
	if err != nil {
		return cleanupOut(f, err)
	}
	if f == nil {
		_, err = c.stdout.Write(res.PrivateKey)
		fmt.Fprintf(c.stderr, "new key for %s, fingerprint %s; the private key above is shown once: install it in each operator's client\n",
			strings.Join(res.Skins, ", "), res.Fingerprint)
		return err
	}
	if _, err := f.Write(res.PrivateKey); err != nil {
		return cleanupOut(f, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "new key for %s, fingerprint %s\nprivate key written once to %s (%s format): give it to the operators, then delete it\n",
		strings.Join(res.Skins, ", "), res.Fingerprint, *out, res.Format)
	return nil
}

func cleanupOut(f *os.File, err error) error {
	if f != nil {
		f.Close()
		os.Remove(f.Name())
	}
	return err
}

// readAnyKey reads a private key in any format otrdesk writes, and the
// accounts it names (none for the otr.js form).
func readAnyKey(path, pass string) (map[string]*otr.PrivateKey, *otr.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	trimmed := bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN AGE")) || bytes.HasPrefix(trimmed, []byte("age-encryption.org/")):
		if pass == "" {
			return nil, nil, fmt.Errorf("%s is a passphrase-sealed key bundle: give the passphrase with --passphrase-file FILE or OTRDESK_PASSPHRASE", path)
		}
		bun, err := otr.ReadBundle(bytes.NewReader(b), pass)
		if err != nil {
			return nil, nil, err
		}
		return byAccount(bun.PrivateKeys), nil, nil
	case bytes.HasPrefix(trimmed, []byte("(")):
		f, err := otr.ParsePrivateKeyFile(b)
		if err != nil {
			return nil, nil, err
		}
		return byAccount(f), nil, nil
	}
	k, err := otr.ParsePrivateKeyBase64(string(trimmed))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not an OTR private key: not an otr.private_key file, an otrdesk key bundle, or an otr.js key", path)
	}
	return nil, k, nil
}

func byAccount(f *otr.PrivateKeyFile) map[string]*otr.PrivateKey {
	m := map[string]*otr.PrivateKey{}
	for _, a := range f.Accounts() {
		m[a.Name+"\x00"+a.Protocol] = a.Key
	}
	return m
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
	accts, single, err := readAnyKey(pos[0], pass)
	if err != nil {
		return err
	}
	if single != nil {
		fmt.Fprintln(c.stdout, single.Fingerprint())
		return nil
	}
	if len(accts) == 0 {
		return fmt.Errorf("%s holds no key", pos[0])
	}
	ids := slices.Sorted(maps.Keys(accts))
	for _, id := range ids {
		name, proto, _ := strings.Cut(id, "\x00")
		fmt.Fprintf(c.stdout, "%s\t%s\t%s\n", accts[id].Fingerprint(), name, proto)
	}
	return nil
}

// clientKeyFile is where each client keeps its OTR private keys.
func clientKeyFile(client, account, dir string) (string, error) {
	home, _ := os.UserHomeDir()
	switch client {
	case admin.FormatPidgin:
		if dir == "" {
			dir = filepath.Join(home, ".purple")
		}
		return filepath.Join(dir, "otr.private_key"), nil
	case admin.FormatProfanity:
		if dir == "" {
			data := os.Getenv("XDG_DATA_HOME")
			if data == "" {
				data = filepath.Join(home, ".local", "share")
			}
			dir = filepath.Join(data, "profanity")
		}
		return filepath.Join(dir, "otr", strings.ReplaceAll(account, "@", "_at_"), "keys.txt"), nil
	case admin.FormatMcabber:
		if dir == "" {
			dir = filepath.Join(home, ".mcabber")
		}
		return filepath.Join(dir, "otr", account+".key"), nil
	}
	return "", usagef("--client must be pidgin, profanity or mcabber")
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
	proto, ok := admin.Protocol(*client)
	if !ok {
		return usagef("--client must be pidgin, profanity or mcabber")
	}
	if err := admin.CheckAccount(*account); err != nil {
		return err
	}
	pass, err := passphrase(*passFile)
	if err != nil {
		return err
	}
	accts, key, err := readAnyKey(*keyPath, pass)
	if err != nil {
		return err
	}
	if key == nil {
		// A libotr file or bundle names its accounts: the key must be for this
		// one (under any client's protocol id: a bundle uses Pidgin's).
		var names []string
		for id, k := range accts {
			name, _, _ := strings.Cut(id, "\x00")
			if name == *account {
				key = k
			}
			names = append(names, name)
		}
		if key == nil {
			return fmt.Errorf("%s holds keys for %s, not for %s: generate one with --account %s", *keyPath, strings.Join(names, ", "), *account, *account)
		}
	}
	target, err := clientKeyFile(*client, *account, *dir)
	if err != nil {
		return err
	}
	var f *otr.PrivateKeyFile
	old, err := os.ReadFile(target)
	switch {
	case err == nil:
		if f, err = otr.ParsePrivateKeyFile(old); err != nil {
			return fmt.Errorf("%s exists but could not be read, so it was left alone: %w", target, err)
		}
	case errors.Is(err, os.ErrNotExist):
		f = &otr.PrivateKeyFile{}
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
	var skins listFlag
	fs.Var(&skins, "skin", "the skin whose fingerprints to drop (repeatable)")
	all := fs.Bool("all", false, "every skin")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("keys revoke takes flags only, got %q", pos[0])
	}
	if *all == (len(skins) > 0) {
		return usagef("keys revoke needs --skin NAME or --all (one of them)")
	}
	_, svc, done, err := openServiceFlag(*cfgPath)
	if err != nil {
		return err
	}
	defer done()
	out, err := svc.Revoke(skins, *all)
	if err != nil {
		return err
	}
	for _, s := range out {
		fmt.Fprintf(c.stdout, "revoked every key of %s: its chat box shows no verified fingerprint until 'otrdesk keys generate --skin %s'\n", s.Name, s.Name)
	}
	return nil
}
