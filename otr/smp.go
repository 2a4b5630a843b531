package otr

import (
	"bytes"
	"crypto/sha256"
	"math/big"
)

// The Socialist Millionaires' Protocol of Protocol-v3, run inside Data
// messages as TLVs 2-7. The secret compared is SHA-256(1 ‖ initiator's
// fingerprint ‖ responder's fingerprint ‖ ssid ‖ user secret), so a man in
// the middle makes it fail even when both users typed the same secret. All
// arithmetic is in the prime-order subgroup of the DH group, with
// exponents of the full size of the modulus.

// smpState is a session's SMP state: which message it expects next and
// the values of the steps so far.
type smpState struct {
	expect int // 0 or 1: SMP message 1; 2, 3 or 4

	secret   *big.Int // x (initiator) or y (responder)
	a2, a3   *big.Int // our exponents (a2, a3 or b2, b3)
	g2, g3   *big.Int // the shared generators
	g3o      *big.Int // the other side's g3a or g3b
	p, q     *big.Int // our Pa, Qa or Pb, Qb
	pab, qab *big.Int // Pa/Pb and Qa/Qb

	// The responder's view of a received SMP message 1 until the user
	// gives the secret.
	pending1     bool
	g2o, g3oPend *big.Int
	question     string
}

const smpExponentBytes = 192 // 1536 bits

func (c *Conversation) smpRandom() (*big.Int, error) {
	b := make([]byte, smpExponentBytes)
	if _, err := fullRead(c.rand, b); err != nil {
		return nil, wrap("otr: SMP randomness", err)
	}
	return new(big.Int).SetBytes(b), nil
}

func smpHash(version byte, a, b *big.Int) *big.Int {
	h := sha256.New()
	h.Write([]byte{version})
	h.Write(appendMPI(nil, a))
	if b != nil {
		h.Write(appendMPI(nil, b))
	}
	return new(big.Int).SetBytes(h.Sum(nil))
}

func expP(b, e *big.Int) *big.Int { return new(big.Int).Exp(b, e, dhP) }

func mulP(a, b *big.Int) *big.Int {
	r := new(big.Int).Mul(a, b)
	return r.Mod(r, dhP)
}

func divP(a, b *big.Int) *big.Int {
	inv := new(big.Int).ModInverse(b, dhP)
	return mulP(a, inv)
}

// subMulQ returns r - a*c mod q.
func subMulQ(r, a, c *big.Int) *big.Int {
	t := new(big.Int).Mul(a, c)
	t.Sub(r, t)
	return t.Mod(t, dhQ)
}

func validExponent(x *big.Int) bool { return x.Sign() > 0 && x.Cmp(dhQ) < 0 }

// validHash reports whether c can be a SHA-256 value: a peer sending a
// huge "hash" would otherwise make us exponentiate by it.
func validHash(c *big.Int) bool { return c.BitLen() <= 256 }

// proveLog makes the proof (c, D) of knowledge of a with g1^a, tagged version.
func (c *Conversation) proveLog(version byte, a *big.Int) (ch, d *big.Int, err error) {
	r, err := c.smpRandom()
	if err != nil {
		return nil, nil, err
	}
	ch = smpHash(version, expP(dhG, r), nil)
	return ch, subMulQ(r, a, ch), nil
}

// checkLog verifies a proof that the sender knows log_g1(v).
func checkLog(version byte, v, ch, d *big.Int) bool {
	return validExponent(d) && validHash(ch) && smpHash(version, mulP(expP(dhG, d), expP(v, ch)), nil).Cmp(ch) == 0
}

func smpEncode(vals ...*big.Int) []byte {
	b := appendInt(nil, uint32(len(vals)))
	for _, v := range vals {
		b = appendMPI(b, v)
	}
	return b
}

func smpDecode(b []byte, n int) ([]*big.Int, bool) {
	count, b, ok := readInt(b)
	if !ok || int(count) != n {
		return nil, false
	}
	vals := make([]*big.Int, n)
	for i := range vals {
		if vals[i], b, ok = readMPI(b); !ok {
			return nil, false
		}
	}
	return vals, true
}

// smpSecret computes the value compared: initiator's fingerprint first.
func (c *Conversation) smpSecret(s *session, weInitiate bool, secret []byte) *big.Int {
	ours := c.key.PublicKey.Fingerprint()
	theirs := s.theirKey.Fingerprint()
	h := sha256.New()
	h.Write([]byte{1})
	if weInitiate {
		h.Write(ours[:])
		h.Write(theirs[:])
	} else {
		h.Write(theirs[:])
		h.Write(ours[:])
	}
	h.Write(s.ssid[:])
	h.Write(secret)
	return new(big.Int).SetBytes(h.Sum(nil))
}

// Authenticate runs SMP with the current instance: if the peer asked (an
// EventSMPSecretNeeded is pending), it answers with secret and question is
// ignored; otherwise it starts SMP with secret and an optional question
// for the peer. The result arrives as an EventSMPSucceeded or
// EventSMPFailed from Receive.
func (c *Conversation) Authenticate(question string, secret []byte) ([][]byte, error) {
	s := c.best()
	if s == nil || s.state != stateEncrypted {
		return nil, ErrNotSecure
	}
	st := &s.smp
	if st.pending1 {
		return c.smpAnswer(s, secret)
	}
	*st = smpState{}
	var err error
	if st.a2, err = c.smpRandom(); err != nil {
		return nil, err
	}
	if st.a3, err = c.smpRandom(); err != nil {
		return nil, err
	}
	st.secret = c.smpSecret(s, true, secret)
	g2a, g3a := expP(dhG, st.a2), expP(dhG, st.a3)
	c2, d2, err := c.proveLog(1, st.a2)
	if err != nil {
		return nil, err
	}
	c3, d3, err := c.proveLog(2, st.a3)
	if err != nil {
		return nil, err
	}
	body := smpEncode(g2a, c2, d2, g3a, c3, d3)
	t := tlv{typ: tlvSMP1, value: body}
	if question != "" {
		t = tlv{typ: tlvSMP1Q, value: append(append([]byte(question), 0), body...)}
	}
	st.expect = 2
	return c.sendData(s, nil, []tlv{t}, flagIgnoreUnreadable)
}

// AbortSMP stops SMP with the current instance and tells the peer.
func (c *Conversation) AbortSMP() ([][]byte, error) {
	s := c.best()
	if s == nil || s.state != stateEncrypted {
		return nil, ErrNotSecure
	}
	s.smp = smpState{}
	return c.sendData(s, nil, []tlv{{typ: tlvSMPAbort}}, flagIgnoreUnreadable)
}

// smpAnswer makes SMP message 2 once the user gave the secret.
func (c *Conversation) smpAnswer(s *session, secret []byte) ([][]byte, error) {
	st := &s.smp
	g2a, g3a := st.g2o, st.g3oPend
	*st = smpState{}
	st.secret = c.smpSecret(s, false, secret)
	st.g3o = g3a
	var err error
	if st.a2, err = c.smpRandom(); err != nil {
		return nil, err
	}
	if st.a3, err = c.smpRandom(); err != nil {
		return nil, err
	}
	g2b, g3b := expP(dhG, st.a2), expP(dhG, st.a3)
	c2, d2, err := c.proveLog(3, st.a2)
	if err != nil {
		return nil, err
	}
	c3, d3, err := c.proveLog(4, st.a3)
	if err != nil {
		return nil, err
	}
	st.g2 = expP(g2a, st.a2)
	st.g3 = expP(g3a, st.a3)
	r4, err := c.smpRandom()
	if err != nil {
		return nil, err
	}
	st.p = expP(st.g3, r4)
	st.q = mulP(expP(dhG, r4), expP(st.g2, st.secret))
	r5, err := c.smpRandom()
	if err != nil {
		return nil, err
	}
	r6, err := c.smpRandom()
	if err != nil {
		return nil, err
	}
	cp := smpHash(5, expP(st.g3, r5), mulP(expP(dhG, r5), expP(st.g2, r6)))
	d5 := subMulQ(r5, r4, cp)
	d6 := subMulQ(r6, st.secret, cp)
	st.expect = 3
	body := smpEncode(g2b, c2, d2, g3b, c3, d3, st.p, st.q, cp, d5, d6)
	return c.sendData(s, nil, []tlv{{typ: tlvSMP2, value: body}}, flagIgnoreUnreadable)
}

// onSMP handles one SMP TLV.
func (c *Conversation) onSMP(r *result, s *session, t tlv) error {
	st := &s.smp
	expect := st.expect
	if expect == 0 {
		expect = 1
	}
	abort := func(text string) error {
		s.smp = smpState{}
		r.event(Event{Kind: EventSMPAborted, Instance: s.tag, Text: text})
		msgs, err := c.sendData(s, nil, []tlv{{typ: tlvSMPAbort}}, flagIgnoreUnreadable)
		r.send = append(r.send, msgs...)
		return err
	}
	const cheat = "The other side's authentication message was invalid; authentication stopped."
	switch t.typ {
	case tlvSMPAbort:
		s.smp = smpState{}
		r.event(Event{Kind: EventSMPAborted, Instance: s.tag, Text: "The other side stopped the authentication."})
		return nil
	case tlvSMP1, tlvSMP1Q:
		if expect != 1 || st.pending1 {
			return abort("Authentication was started twice; it was stopped. Try again.")
		}
		body, question := t.value, ""
		if t.typ == tlvSMP1Q {
			i := bytes.IndexByte(body, 0)
			if i < 0 {
				return abort(cheat)
			}
			question, body = string(body[:i]), body[i+1:]
		}
		v, ok := smpDecode(body, 6)
		if !ok || !validDHPublic(v[0]) || !validDHPublic(v[3]) ||
			!checkLog(1, v[0], v[1], v[2]) || !checkLog(2, v[3], v[4], v[5]) {
			return abort(cheat)
		}
		*st = smpState{pending1: true, g2o: v[0], g3oPend: v[3], question: question, expect: 1}
		r.event(Event{Kind: EventSMPSecretNeeded, Instance: s.tag, Text: question})
		return nil
	case tlvSMP2:
		if expect != 2 {
			return abort("An authentication message arrived out of order; authentication stopped.")
		}
		v, ok := smpDecode(t.value, 11)
		if !ok {
			return abort(cheat)
		}
		g2b, c2, d2, g3b, c3, d3, pb, qb, cp, d5, d6 := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]
		if !validDHPublic(g2b) || !validDHPublic(g3b) || !validDHPublic(pb) || !validDHPublic(qb) ||
			!checkLog(3, g2b, c2, d2) || !checkLog(4, g3b, c3, d3) || !validExponent(d5) || !validExponent(d6) || !validHash(cp) {
			return abort(cheat)
		}
		g2 := expP(g2b, st.a2)
		g3 := expP(g3b, st.a3)
		if smpHash(5, mulP(expP(g3, d5), expP(pb, cp)), mulP(mulP(expP(dhG, d5), expP(g2, d6)), expP(qb, cp))).Cmp(cp) != 0 {
			return abort(cheat)
		}
		st.g2, st.g3, st.g3o = g2, g3, g3b
		r4, err := c.smpRandom()
		if err != nil {
			return err
		}
		st.p = expP(g3, r4)
		st.q = mulP(expP(dhG, r4), expP(g2, st.secret))
		r5, err := c.smpRandom()
		if err != nil {
			return err
		}
		r6, err := c.smpRandom()
		if err != nil {
			return err
		}
		cp2 := smpHash(6, expP(g3, r5), mulP(expP(dhG, r5), expP(g2, r6)))
		d5a := subMulQ(r5, r4, cp2)
		d6a := subMulQ(r6, st.secret, cp2)
		st.pab = divP(st.p, pb)
		st.qab = divP(st.q, qb)
		ra := expP(st.qab, st.a3)
		r7, err := c.smpRandom()
		if err != nil {
			return err
		}
		cr := smpHash(7, expP(dhG, r7), expP(st.qab, r7))
		d7 := subMulQ(r7, st.a3, cr)
		st.expect = 4
		r.event(Event{Kind: EventSMPProgress, Instance: s.tag})
		msgs, err := c.sendData(s, nil, []tlv{{typ: tlvSMP3, value: smpEncode(st.p, st.q, cp2, d5a, d6a, ra, cr, d7)}}, flagIgnoreUnreadable)
		r.send = append(r.send, msgs...)
		return err
	case tlvSMP3:
		if expect != 3 {
			return abort("An authentication message arrived out of order; authentication stopped.")
		}
		v, ok := smpDecode(t.value, 8)
		if !ok {
			return abort(cheat)
		}
		pa, qa, cp, d5, d6, ra, cr, d7 := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
		if !validDHPublic(pa) || !validDHPublic(qa) || !validDHPublic(ra) ||
			!validExponent(d5) || !validExponent(d6) || !validExponent(d7) || !validHash(cp) || !validHash(cr) {
			return abort(cheat)
		}
		if smpHash(6, mulP(expP(st.g3, d5), expP(pa, cp)), mulP(mulP(expP(dhG, d5), expP(st.g2, d6)), expP(qa, cp))).Cmp(cp) != 0 {
			return abort(cheat)
		}
		qab := divP(qa, st.q)
		if smpHash(7, mulP(expP(dhG, d7), expP(st.g3o, cr)), mulP(expP(qab, d7), expP(ra, cr))).Cmp(cr) != 0 {
			return abort(cheat)
		}
		rb := expP(qab, st.a3)
		r7, err := c.smpRandom()
		if err != nil {
			return err
		}
		cr2 := smpHash(8, expP(dhG, r7), expP(qab, r7))
		d7b := subMulQ(r7, st.a3, cr2)
		rab := expP(ra, st.a3)
		success := rab.Cmp(divP(pa, st.p)) == 0
		s.smp = smpState{}
		msgs, err := c.sendData(s, nil, []tlv{{typ: tlvSMP4, value: smpEncode(rb, cr2, d7b)}}, flagIgnoreUnreadable)
		r.send = append(r.send, msgs...)
		c.smpResult(r, s, success)
		return err
	case tlvSMP4:
		if expect != 4 {
			return abort("An authentication message arrived out of order; authentication stopped.")
		}
		v, ok := smpDecode(t.value, 3)
		if !ok {
			return abort(cheat)
		}
		rb, cr, d7 := v[0], v[1], v[2]
		if !validDHPublic(rb) || !validExponent(d7) || !validHash(cr) ||
			smpHash(8, mulP(expP(dhG, d7), expP(st.g3o, cr)), mulP(expP(st.qab, d7), expP(rb, cr))).Cmp(cr) != 0 {
			return abort(cheat)
		}
		rab := expP(rb, st.a3)
		success := rab.Cmp(st.pab) == 0
		s.smp = smpState{}
		c.smpResult(r, s, success)
		return nil
	}
	return nil
}

func (c *Conversation) smpResult(r *result, s *session, success bool) {
	if success {
		r.event(Event{Kind: EventSMPSucceeded, Instance: s.tag, Fingerprint: s.theirKey.Fingerprint(),
			Text: "Authentication succeeded: the other side knows the secret."})
		return
	}
	r.event(Event{Kind: EventSMPFailed, Instance: s.tag, Fingerprint: s.theirKey.Fingerprint(),
		Text: "Authentication failed: the other side gave a different secret, or someone is in the middle."})
}
