package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// SignerPrefix starts the public form of a signer key, the value of a
// page's data-signer attribute: "otrdesk-signer:" and the standard padded
// base64 of the 32-byte Ed25519 public key.
const SignerPrefix = "otrdesk-signer:"

// FormatSigner returns the public form of a signer key.
func FormatSigner(pub ed25519.PublicKey) string {
	return SignerPrefix + base64.StdEncoding.EncodeToString(pub)
}

// ErrSigner is returned for a public form that is not one.
var ErrSigner = errors.New("keyring: a signer is \"otrdesk-signer:\" and the base64 of a 32-byte Ed25519 public key")

// ParseSigner reads the public form. Spaces around it are ignored; inside
// it, only the one canonical spelling is accepted.
func ParseSigner(s string) (ed25519.PublicKey, error) {
	b64, ok := strings.CutPrefix(strings.TrimSpace(s), SignerPrefix)
	if !ok {
		return nil, ErrSigner
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != ed25519.PublicKeySize || base64.StdEncoding.EncodeToString(raw) != b64 {
		return nil, ErrSigner
	}
	return ed25519.PublicKey(raw), nil
}

// SignerFingerprint is how a person compares two signer keys: the first 20
// bytes of SHA-256 over the 32-byte public key, in five groups of eight
// upper-case hex digits, the shape of an OTR fingerprint in Pidgin. SHA-256
// rather than SHA-1 because nothing else has to match it; 160 bits because
// people already read fingerprints of that length.
func SignerFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	h := strings.ToUpper(hex.EncodeToString(sum[:20]))
	return h[0:8] + " " + h[8:16] + " " + h[16:24] + " " + h[24:32] + " " + h[32:40]
}

// A signer key file is text:
//
//	otrdesk-signer-key 1
//	public otrdesk-signer:<base64 public key>
//	secret <base64 32-byte Ed25519 seed>
//
// or, with a passphrase, the first two lines followed by an ASCII-armored
// age file (scrypt recipient) whose plaintext is the "secret" line. The
// public line stays readable so `otrdesk snippet --signer FILE` needs no
// passphrase; on reading, it must match the key the secret gives.
const signerFileHeader = "otrdesk-signer-key 1\n"

// MaxSignerWorkFactor bounds the scrypt work factor a signer file may ask
// for, so a doctored file cannot make reading it take hours.
const MaxSignerWorkFactor = 22

// Errors of signer key files.
var (
	ErrNotSignerFile     = errors.New("keyring: not an otrdesk signer key file")
	ErrNeedPassphrase    = errors.New("keyring: the signer key file is encrypted: give its passphrase (--passphrase-file FILE or OTRDESK_PASSPHRASE)")
	ErrWrongPassphrase   = errors.New("keyring: wrong passphrase for the signer key file")
	ErrSignerKeyMismatch = errors.New("keyring: the signer key file's public line does not match its secret key")
)

// MarshalSignerFile writes priv as a signer key file, encrypted with age
// when passphrase is not empty. workFactor is scrypt's log2 N; 0 takes
// age's default.
func MarshalSignerFile(priv ed25519.PrivateKey, passphrase string, workFactor int) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("keyring: not an Ed25519 private key")
	}
	var out bytes.Buffer
	out.WriteString(signerFileHeader)
	out.WriteString("public " + FormatSigner(priv.Public().(ed25519.PublicKey)) + "\n")
	secret := []byte("secret " + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n")
	if passphrase == "" {
		out.Write(secret)
		return out.Bytes(), nil
	}
	if workFactor > MaxSignerWorkFactor {
		return nil, fmt.Errorf("keyring: scrypt work factor %d is over %d", workFactor, MaxSignerWorkFactor)
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return nil, fmt.Errorf("keyring: encrypting the signer key: %w", err)
	}
	if workFactor > 0 {
		r.SetWorkFactor(workFactor)
	}
	aw := armor.NewWriter(&out)
	ew, err := age.Encrypt(aw, r)
	if err != nil {
		return nil, fmt.Errorf("keyring: encrypting the signer key: %w", err)
	}
	if _, err := ew.Write(secret); err != nil {
		return nil, fmt.Errorf("keyring: encrypting the signer key: %w", err)
	}
	if err := ew.Close(); err != nil {
		return nil, fmt.Errorf("keyring: encrypting the signer key: %w", err)
	}
	if err := aw.Close(); err != nil {
		return nil, fmt.Errorf("keyring: encrypting the signer key: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// splitSignerFile returns the public key named in a signer key file and
// the rest of the file after the public line.
func splitSignerFile(b []byte) (ed25519.PublicKey, []byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(signerFileHeader))
	if !ok {
		return nil, nil, fmt.Errorf("%w: the first line is not %q", ErrNotSignerFile, strings.TrimSpace(signerFileHeader))
	}
	line, rest, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return nil, nil, fmt.Errorf("%w: no public line", ErrNotSignerFile)
	}
	v, ok := bytes.CutPrefix(line, []byte("public "))
	if !ok {
		return nil, nil, fmt.Errorf("%w: the second line is not \"public otrdesk-signer:...\"", ErrNotSignerFile)
	}
	pub, err := ParseSigner(string(v))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotSignerFile, err)
	}
	return pub, rest, nil
}

// SignerFilePublic returns the public key of a signer key file without
// decrypting it.
func SignerFilePublic(b []byte) (ed25519.PublicKey, error) {
	pub, _, err := splitSignerFile(b)
	return pub, err
}

// SignerFileEncrypted reports whether a signer key file needs a passphrase.
func SignerFileEncrypted(b []byte) bool {
	_, rest, err := splitSignerFile(b)
	return err == nil && bytes.HasPrefix(bytes.TrimSpace(rest), []byte(armor.Header))
}

// ReadSignerFile returns the private key of a signer key file, decrypting
// it with passphrase when it is encrypted.
func ReadSignerFile(b []byte, passphrase string) (ed25519.PrivateKey, error) {
	pub, rest, err := splitSignerFile(b)
	if err != nil {
		return nil, err
	}
	secret := rest
	if bytes.HasPrefix(bytes.TrimSpace(rest), []byte(armor.Header)) {
		if passphrase == "" {
			return nil, ErrNeedPassphrase
		}
		id, err := age.NewScryptIdentity(passphrase)
		if err != nil {
			return nil, fmt.Errorf("keyring: reading the signer key: %w", err)
		}
		id.SetMaxWorkFactor(MaxSignerWorkFactor)
		dr, err := age.Decrypt(armor.NewReader(bytes.NewReader(bytes.TrimSpace(rest))), id)
		if err != nil {
			var noMatch *age.NoIdentityMatchError
			if errors.As(err, &noMatch) {
				return nil, ErrWrongPassphrase
			}
			return nil, fmt.Errorf("%w: decrypting: %v", ErrNotSignerFile, err)
		}
		if secret, err = io.ReadAll(io.LimitReader(dr, 1024)); err != nil {
			return nil, fmt.Errorf("%w: decrypting: %v", ErrNotSignerFile, err)
		}
	}
	v, ok := bytes.CutPrefix(secret, []byte("secret "))
	v, ok2 := bytes.CutSuffix(v, []byte("\n"))
	seed, err := base64.StdEncoding.DecodeString(string(v))
	if !ok || !ok2 || err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: no readable secret line", ErrNotSignerFile)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !pub.Equal(priv.Public()) {
		return nil, ErrSignerKeyMismatch
	}
	return priv, nil
}
