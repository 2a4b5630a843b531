package otr

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math/big"
)

// The Diffie-Hellman group of OTR: the 1536-bit MODP group of RFC 3526,
// generator 2, with 320-bit secret exponents. SMP works in the subgroup of
// prime order q = (p-1)/2.
var (
	dhP       = mustBig("FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF")
	dhG       = big.NewInt(2)
	dhQ       = new(big.Int).Rsh(dhP, 1)
	dhPMinus2 = new(big.Int).Sub(dhP, big.NewInt(2))
)

const dhExponentBytes = 40 // 320 bits

// mustBig reads a constant of this package written in hex. (Not
// big.Int.SetString: its error path formats with fmt, see wrap.go.)
func mustBig(hex string) *big.Int {
	b := make([]byte, len(hex)/2)
	if !decodeHex(b, hex) {
		panic("otr: bad constant")
	}
	return new(big.Int).SetBytes(b)
}

// validDHPublic reports whether v is a usable group element: 2 <= v <= p-2.
func validDHPublic(v *big.Int) bool {
	return v != nil && v.Cmp(dhG) >= 0 && v.Cmp(dhPMinus2) <= 0
}

// dhKey is one of our Diffie-Hellman key pairs.
type dhKey struct {
	priv, pub *big.Int
}

func (c *Conversation) newDHKey() (dhKey, error) {
	b := make([]byte, dhExponentBytes)
	if _, err := fullRead(c.rand, b); err != nil {
		return dhKey{}, wrap("otr: generating a DH key", err)
	}
	x := new(big.Int).SetBytes(b)
	return dhKey{priv: x, pub: expG(x)}, nil
}

// The AKE states of Protocol-v3 "The protocol state machine".
type akeState uint8

const (
	akeNone akeState = iota
	akeAwaitingDHKey
	akeAwaitingRevealSig
	akeAwaitingSig
)

// ake is the state of one authenticated key exchange. "Bob" in the spec
// sends the DH-Commit; here that side has committer set.
type ake struct {
	state     akeState
	version   int
	committer bool
	our       dhKey
	ourKeyID  uint32

	// The committer's r and the commitment it sent.
	r      [16]byte
	encGx  []byte
	hashGx []byte

	// The responder's copy of the commitment it received.
	theirEncGx, theirHashGx []byte

	theirPub *big.Int
	keys     akeKeys
	last     []byte // our last AKE message (binary), for retransmission
}

// akeKeys are the values derived from the AKE's shared secret s
// (Protocol-v3 "Authenticated Key Exchange").
type akeKeys struct {
	ssid      [8]byte
	c, cp     [16]byte
	m1, m2    [32]byte
	m1p, m2p  [32]byte
	secretMPI []byte
}

func deriveAKEKeys(s *big.Int) akeKeys {
	secbytes := appendMPI(nil, s)
	h2 := func(b byte) [32]byte {
		h := sha256.New()
		h.Write([]byte{b})
		h.Write(secbytes)
		var out [32]byte
		h.Sum(out[:0])
		return out
	}
	var k akeKeys
	h := h2(0x00)
	copy(k.ssid[:], h[:8])
	h = h2(0x01)
	copy(k.c[:], h[:16])
	copy(k.cp[:], h[16:])
	k.m1, k.m2, k.m1p, k.m2p = h2(0x02), h2(0x03), h2(0x04), h2(0x05)
	return k
}

func aesCTR(key []byte, iv []byte, in []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("otr: AES key of the wrong size") // keys are fixed-size arrays
	}
	var ctr [16]byte
	copy(ctr[:], iv)
	out := make([]byte, len(in))
	cipher.NewCTR(block, ctr[:]).XORKeyStream(out, in)
	return out
}

// Errors of the AKE. They reach the caller wrapped with the step.
var (
	ErrAKEFailed = errors.New("otr: the encrypted session could not be set up (authentication failed)")
	ErrMalformed = errors.New("otr: malformed OTR message")
)

// startAKE makes a DH-Commit of the given version: the message every
// instance of the peer may answer.
func (c *Conversation) startAKE(version int) (*ake, error) {
	a := &ake{state: akeAwaitingDHKey, version: version, committer: true, ourKeyID: 1}
	var err error
	if a.our, err = c.newDHKey(); err != nil {
		return nil, err
	}
	if _, err := fullRead(c.rand, a.r[:]); err != nil {
		return nil, wrap("otr: making a DH-Commit", err)
	}
	gxMPI := appendMPI(nil, a.our.pub)
	a.encGx = aesCTR(a.r[:], nil, gxMPI)
	h := sha256.Sum256(gxMPI)
	a.hashGx = h[:]
	var body []byte
	body = appendData(body, a.encGx)
	body = appendData(body, a.hashGx)
	a.last = body
	return a, nil
}

// dhCommitBody returns the body of the DH-Commit a sends.
func (a *ake) dhCommitBody() []byte { return a.last }

// respondToCommit answers a DH-Commit (body without header) with a DH-Key,
// moving to awaiting-RevealSig. keep says whether to reuse the key of a
// previous DH-Key (retransmission in awaiting-RevealSig).
func (c *Conversation) respondToCommit(a *ake, version int, body []byte, keep bool) ([]byte, error) {
	encGx, rest, ok := readData(body)
	if !ok {
		return nil, wrap("otr: reading DH-Commit", ErrMalformed)
	}
	hashGx, _, ok := readData(rest)
	if !ok || len(hashGx) != 32 {
		return nil, wrap("otr: reading DH-Commit", ErrMalformed)
	}
	if !keep || a.our.pub == nil {
		k, err := c.newDHKey()
		if err != nil {
			return nil, err
		}
		*a = ake{our: k}
	}
	a.state = akeAwaitingRevealSig
	a.version = version
	a.committer = false
	a.ourKeyID = 1
	a.theirEncGx = append([]byte(nil), encGx...)
	a.theirHashGx = append([]byte(nil), hashGx...)
	a.last = appendMPI(nil, a.our.pub)
	return a.last, nil
}

// receiveDHKey handles a DH-Key as the committer and returns the Reveal
// Signature body.
func (c *Conversation) receiveDHKey(a *ake, body []byte) ([]byte, error) {
	gy, _, ok := readMPI(body)
	if !ok || !validDHPublic(gy) {
		return nil, wrap("otr: reading DH-Key", ErrMalformed)
	}
	a.theirPub = gy
	s := new(big.Int).Exp(gy, a.our.priv, dhP)
	a.keys = deriveAKEKeys(s)
	encSig, mac, err := c.signatureBlock(a, a.keys.c[:], a.keys.m1[:], a.keys.m2[:])
	if err != nil {
		return nil, err
	}
	var out []byte
	out = appendData(out, a.r[:])
	out = appendData(out, encSig)
	out = append(out, mac...)
	a.state = akeAwaitingSig
	a.last = out
	return out, nil
}

// signatureBlock makes the encrypted signature X and its MAC for our side
// of the AKE, with the keys of our role.
func (c *Conversation) signatureBlock(a *ake, cKey, m1, m2 []byte) (enc, mac []byte, err error) {
	pub := c.key.PublicKey.Bytes()
	h := hmac.New(sha256.New, m1)
	h.Write(appendMPI(nil, a.our.pub))
	h.Write(appendMPI(nil, a.theirPub))
	h.Write(pub)
	h.Write(appendInt(nil, a.ourKeyID))
	sig, err := c.key.Sign(c.rand, h.Sum(nil))
	if err != nil {
		return nil, nil, wrap("otr: signing the AKE", err)
	}
	x := append(pub, appendInt(nil, a.ourKeyID)...)
	x = append(x, sig...)
	enc = aesCTR(cKey, nil, x)
	h = hmac.New(sha256.New, m2)
	h.Write(appendData(nil, enc))
	return enc, h.Sum(nil)[:20], nil
}

// verifySignatureBlock checks the peer's encrypted signature and returns
// its long-term key and DH key id.
func verifySignatureBlock(a *ake, enc, mac, cKey, m1, m2 []byte) (*PublicKey, uint32, error) {
	h := hmac.New(sha256.New, m2)
	h.Write(appendData(nil, enc))
	if subtle.ConstantTimeCompare(h.Sum(nil)[:20], mac) != 1 {
		return nil, 0, wrap("otr: checking the signature MAC", ErrAKEFailed)
	}
	x := aesCTR(cKey, nil, enc)
	pub, rest, ok := ParsePublicKey(x)
	if !ok {
		return nil, 0, wrap("otr: reading the peer's public key", ErrAKEFailed)
	}
	keyID, sig, ok := readInt(rest)
	if !ok || keyID == 0 {
		return nil, 0, wrap("otr: reading the peer's key id", ErrAKEFailed)
	}
	h = hmac.New(sha256.New, m1)
	h.Write(appendMPI(nil, a.theirPub))
	h.Write(appendMPI(nil, a.our.pub))
	h.Write(pub.Bytes())
	h.Write(appendInt(nil, keyID))
	if !pub.Verify(h.Sum(nil), sig) {
		return nil, 0, wrap("otr: verifying the peer's signature", ErrAKEFailed)
	}
	return pub, keyID, nil
}

// receiveRevealSig handles a Reveal Signature as the responder. It returns
// the Signature body and the peer's key and key id.
func (c *Conversation) receiveRevealSig(a *ake, body []byte) ([]byte, *PublicKey, uint32, error) {
	r, rest, ok := readData(body)
	if !ok || len(r) != 16 {
		return nil, nil, 0, wrap("otr: reading Reveal Signature", ErrMalformed)
	}
	enc, rest, ok := readData(rest)
	if !ok || len(rest) < 20 {
		return nil, nil, 0, wrap("otr: reading Reveal Signature", ErrMalformed)
	}
	mac := rest[:20]
	gxMPI := aesCTR(r, nil, a.theirEncGx)
	h := sha256.Sum256(gxMPI)
	if subtle.ConstantTimeCompare(h[:], a.theirHashGx) != 1 {
		return nil, nil, 0, wrap("otr: checking the DH commitment", ErrAKEFailed)
	}
	gx, extra, ok := readMPI(gxMPI)
	if !ok || len(extra) != 0 || !validDHPublic(gx) {
		return nil, nil, 0, wrap("otr: reading the committed DH key", ErrAKEFailed)
	}
	a.theirPub = gx
	s := new(big.Int).Exp(gx, a.our.priv, dhP)
	a.keys = deriveAKEKeys(s)
	pub, keyID, err := verifySignatureBlock(a, enc, mac, a.keys.c[:], a.keys.m1[:], a.keys.m2[:])
	if err != nil {
		return nil, nil, 0, err
	}
	encSig, myMAC, err := c.signatureBlock(a, a.keys.cp[:], a.keys.m1p[:], a.keys.m2p[:])
	if err != nil {
		return nil, nil, 0, err
	}
	out := appendData(nil, encSig)
	out = append(out, myMAC...)
	a.state = akeNone
	return out, pub, keyID, nil
}

// receiveSig handles a Signature as the committer.
func (c *Conversation) receiveSig(a *ake, body []byte) (*PublicKey, uint32, error) {
	enc, rest, ok := readData(body)
	if !ok || len(rest) < 20 {
		return nil, 0, wrap("otr: reading Signature", ErrMalformed)
	}
	pub, keyID, err := verifySignatureBlock(a, enc, rest[:20], a.keys.cp[:], a.keys.m1p[:], a.keys.m2p[:])
	if err != nil {
		return nil, 0, err
	}
	a.state = akeNone
	return pub, keyID, nil
}

// commitWins reports whether our commitment beats theirs when both sides
// sent a DH-Commit: the larger hash, as an unsigned number, keeps its
// commitment.
func commitWins(ours, theirs []byte) bool { return bytes.Compare(ours, theirs) > 0 }
