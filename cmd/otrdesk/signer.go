package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"otrdesk.im/otrdesk/keyring"
)

// signerWorkFactor is the scrypt work factor of encrypted signer key
// files; 0 is age's default. Only tests change it.
var signerWorkFactor = 0

func cmdSigner(c *cli, args []string) error {
	if len(args) == 0 || args[0] != "generate" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(c.stderr, "usage: otrdesk signer generate --out FILE [--passphrase-file F]")
			return nil
		}
		return usagef("unknown subcommand: use 'otrdesk signer generate --out FILE [--passphrase-file F]'")
	}
	return signerGenerate(c, args[1:])
}

// signerGenerate makes the admin's offline Ed25519 signing key. Its file
// stays on this machine (mode 0600, never overwritten); only its public
// form goes anywhere: into the pages' data-signer attribute.
func signerGenerate(c *cli, args []string) error {
	fs, _ := c.newFlags("signer generate")
	out := fs.String("out", "", "file to write the signing key to (must not exist)")
	passFile := fs.String("passphrase-file", "", "encrypt the key with the passphrase in this file (or OTRDESK_PASSPHRASE)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("signer generate takes no arguments, got %q", pos[0])
	}
	if *out == "" {
		return usagef("signer generate needs --out FILE: the file that will hold the signing key")
	}
	pass, err := passphrase(*passFile)
	if err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	b, err := keyring.MarshalSignerFile(priv, pass, signerWorkFactor)
	if err != nil {
		return err
	}
	if err := writeNewFile(*out, b); err != nil {
		return err
	}
	how := "encrypted with the passphrase"
	if pass == "" {
		how = "NOT encrypted: keep it offline, or make it again with --passphrase-file"
	}
	fmt.Fprintf(c.stdout, "wrote the signing key to %s (%s)\nsigner:      %s\nfingerprint: %s\n",
		*out, how, keyring.FormatSigner(pub), keyring.SignerFingerprint(pub))
	fmt.Fprintf(c.stdout, "next: otrdesk keyring sign --all --signer %s, then otrdesk snippet NAME --signer %s\n", *out, keyring.FormatSigner(pub))
	return nil
}

// writeNewFile writes b to a file that must not exist yet, mode 0600.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s already exists: a signing key is never overwritten; choose another --out", path)
	}
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// signerPublic reads a --signer argument that only needs the public key:
// the public form itself, a file holding it, or a signer key file (whose
// public line is readable without the passphrase).
func signerPublic(arg string) (ed25519.PublicKey, error) {
	if strings.HasPrefix(arg, keyring.SignerPrefix) {
		pub, err := keyring.ParseSigner(arg)
		if err != nil {
			return nil, fmt.Errorf("--signer %q: %w", arg, err)
		}
		return pub, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("--signer: give otrdesk-signer:... or a signer key file: %w", err)
	}
	if s := strings.TrimSpace(string(b)); strings.HasPrefix(s, keyring.SignerPrefix) {
		pub, err := keyring.ParseSigner(s)
		if err != nil {
			return nil, fmt.Errorf("--signer %s: %w", arg, err)
		}
		return pub, nil
	}
	pub, err := keyring.SignerFilePublic(b)
	if err != nil {
		return nil, fmt.Errorf("--signer %s: %w", arg, err)
	}
	return pub, nil
}

// signerPrivate reads a signer key file for signing.
func signerPrivate(path, passFile string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--signer: %w", err)
	}
	pass := ""
	if keyring.SignerFileEncrypted(b) {
		if pass, err = passphrase(passFile); err != nil {
			return nil, err
		}
	}
	priv, err := keyring.ReadSignerFile(b, pass)
	if err != nil {
		return nil, fmt.Errorf("--signer %s: %w", path, err)
	}
	return priv, nil
}
