package keyfile

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"otrdesk.im/otrdesk/otr"
)

// MaxSize bounds what the key-file readers read: far more than any
// real file (an otr.private_key account is about 1 KB).
const MaxSize = 4 << 20

// Errors of the key-file readers. Each reader wraps its sentinel with the
// reason and, for text files, the line.
var (
	ErrNotPrivateKeyFile  = errors.New("keyfile: not a libotr otr.private_key file")
	ErrBadPrivateKey      = errors.New("keyfile: not a valid OTR DSA private key")
	ErrNotInstanceTagFile = errors.New("keyfile: not a libotr instance tag file")
	ErrNotFingerprintFile = errors.New("keyfile: not a libotr fingerprints file")
	ErrTooLarge           = errors.New("keyfile: key file larger than 4 MiB")
)

// readAllLimited reads r up to MaxSize bytes.
func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, ErrTooLarge
	}
	return b, nil
}

// Account is one account's key in an otr.private_key file.
type Account struct {
	Name     string // the account as the client names it, e.g. a bare JID
	Protocol string // the client's protocol id: prpl-jabber (Pidgin), xmpp (Profanity), jabber (mcabber)
	Key      *otr.PrivateKey
}

// PrivateKeys is a libotr otr.private_key file: a libgcrypt
// S-expression (privkeys (account (name N) (protocol P) (private-key (dsa
// (p #..#) (q #..#) (g #..#) (y #..#) (x #..#)))) ...). It keeps the file's
// text, so that setting or removing one account leaves every other
// account's text byte-for-byte as it was. The zero PrivateKeys is an
// empty file.
type PrivateKeys struct {
	text     []byte
	accounts []accountSpan
	end      int // offset of the closing parenthesis of privkeys
}

type accountSpan struct {
	Account
	start, end int // the account list, from "(" to after ")"
}

// ReadPrivateKeys reads an otr.private_key file from r.
func ReadPrivateKeys(r io.Reader) (*PrivateKeys, error) {
	b, err := readAllLimited(r)
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading otr.private_key: %w", err)
	}
	return ParsePrivateKeys(b)
}

// ParsePrivateKeys parses the text of an otr.private_key file. Like
// libotr it requires every account to have a name, a protocol and a DSA
// private key; unlike libotr it also checks each key (sizes, y = g^x mod p).
func ParsePrivateKeys(text []byte) (*PrivateKeys, error) {
	text = bytes.Clone(text)
	if t := bytes.TrimLeft(text, " \t\r\n\f\v"); len(t) > 0 && t[0] != '(' {
		return nil, fmt.Errorf("%w: line %d: it does not start with (privkeys", ErrNotPrivateKeyFile, lineOf(text, len(text)-len(t)))
	}
	root, err := parseSexp(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPrivateKeyFile, err)
	}
	fail := func(n *sexp, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrNotPrivateKeyFile, lineOf(text, n.start), fmt.Sprintf(format, args...))
	}
	if !root.isList || root.head() != "privkeys" {
		return nil, fail(root, "it does not start with (privkeys")
	}
	f := &PrivateKeys{text: text, end: root.end - 1}
	for _, acct := range root.list[1:] {
		if !acct.isList || acct.head() != "account" {
			return nil, fail(acct, "an element of privkeys is not an (account ...) list")
		}
		var a Account
		name, proto, priv := acct.child("name"), acct.child("protocol"), acct.child("private-key")
		switch {
		case name == nil || len(name.list) < 2 || name.list[1].isList:
			return nil, fail(acct, "an account has no (name ...)")
		case proto == nil || len(proto.list) < 2 || proto.list[1].isList:
			return nil, fail(acct, "account %q has no (protocol ...)", name.list[1].atom)
		case priv == nil:
			return nil, fail(acct, "account %q has no (private-key ...)", name.list[1].atom)
		}
		a.Name, a.Protocol = string(name.list[1].atom), string(proto.list[1].atom)
		dsaKey := priv.child("dsa")
		if dsaKey == nil {
			return nil, fail(priv, "the private key of %q is not a (dsa ...) key", a.Name)
		}
		var v [5]*big.Int
		for i, field := range []string{"p", "q", "g", "y", "x"} {
			n := dsaKey.child(field)
			if n == nil || len(n.list) < 2 || n.list[1].isList {
				return nil, fail(dsaKey, "the DSA key of %q has no %s", a.Name, field)
			}
			v[i] = new(big.Int).SetBytes(n.list[1].atom)
		}
		a.Key = &otr.PrivateKey{PublicKey: otr.PublicKey{P: v[0], Q: v[1], G: v[2], Y: v[3]}, X: v[4]}
		if err := a.Key.Check(); err != nil {
			return nil, fail(dsaKey, "the key of %q: %v", a.Name, err)
		}
		f.accounts = append(f.accounts, accountSpan{Account: a, start: acct.start, end: acct.end})
	}
	return f, nil
}

// Accounts returns the accounts of the file in file order.
func (f *PrivateKeys) Accounts() []Account {
	as := make([]Account, len(f.accounts))
	for i, a := range f.accounts {
		as[i] = a.Account
	}
	return as
}

// Key returns the key of an account.
// When the file names an account twice, libotr uses the last one, and so
// does Key.
func (f *PrivateKeys) Key(name, protocol string) (*otr.PrivateKey, bool) {
	if i := f.last(name, protocol); i >= 0 {
		return f.accounts[i].Key, true
	}
	return nil, false
}

// last returns the index of the last account named name on protocol, or -1.
func (f *PrivateKeys) last(name, protocol string) int {
	for i := len(f.accounts) - 1; i >= 0; i-- {
		if f.accounts[i].Name == name && f.accounts[i].Protocol == protocol {
			return i
		}
	}
	return -1
}

// Bytes returns the file's text.
func (f *PrivateKeys) Bytes() []byte {
	if f.text == nil {
		return []byte("(privkeys\n)\n")
	}
	return bytes.Clone(f.text)
}

// WriteTo writes the file's text to w.
func (f *PrivateKeys) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(f.Bytes())
	return int64(n), err
}

// Set gives the account name on protocol the key k: it replaces that
// account's text if the file has it (the last occurrence, the one libotr
// uses) and appends an account as libotr writes one otherwise. Every other
// account's text is left as it was.
func (f *PrivateKeys) Set(name, protocol string, k *otr.PrivateKey) error {
	if err := k.Check(); err != nil {
		return fmt.Errorf("keyfile: setting the key of %q: %w: %v", name, ErrBadPrivateKey, err)
	}
	block := appendAccountSexp(nil, name, protocol, k)
	text := f.Bytes()
	end := len(text) - 2 // the closing parenthesis of an empty file
	if f.text != nil {
		end = f.end
	}
	var b []byte
	if i := f.last(name, protocol); i >= 0 {
		a := f.accounts[i]
		b = append(append(append(b, text[:a.start]...), block...), text[a.end:]...)
	} else {
		b = append(b, text[:end]...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		b = append(b, ' ')
		b = append(b, block...)
		b = append(b, '\n')
		b = append(b, text[end:]...)
	}
	g, err := ParsePrivateKeys(b)
	if err != nil {
		return fmt.Errorf("keyfile: setting the key of %q: %w", name, err)
	}
	*f = *g
	return nil
}

// Remove deletes an account (every occurrence) and the lines it stood on;
// it reports whether the file had it.
func (f *PrivateKeys) Remove(name, protocol string) bool {
	removed := false
	for f.removeLast(name, protocol) {
		removed = true
	}
	return removed
}

func (f *PrivateKeys) removeLast(name, protocol string) bool {
	if i := f.last(name, protocol); i >= 0 {
		a := f.accounts[i]
		start, end := a.start, a.end
		for start > 0 && (f.text[start-1] == ' ' || f.text[start-1] == '\t') {
			start--
		}
		if end < len(f.text) && f.text[end] == '\n' && (start == 0 || f.text[start-1] == '\n') {
			end++
		}
		b := append(bytes.Clone(f.text[:start]), f.text[end:]...)
		g, err := ParsePrivateKeys(b)
		if err != nil {
			return false // cannot happen: the rest was valid before
		}
		*f = *g
		return true
	}
	return false
}

// appendAccountSexp writes an account as libotr 4.1.1 does (account_write
// with libgcrypt's advanced format), without the leading space and the
// trailing newline that libotr puts around it.
func appendAccountSexp(b []byte, name, protocol string, k *otr.PrivateKey) []byte {
	b = append(b, "(account\n(name "...)
	b = appendSexpAtom(b, []byte(name))
	b = append(b, ")\n(protocol "...)
	b = appendSexpAtom(b, []byte(protocol))
	b = append(b, ")\n(private-key \n (dsa \n"...)
	for _, f := range []struct {
		name string
		v    *big.Int
	}{{"p", k.P}, {"q", k.Q}, {"g", k.G}, {"y", k.Y}, {"x", k.X}} {
		b = append(b, "  ("+f.name+" "...)
		mag := f.v.Bytes()
		if len(mag) == 0 || mag[0]&0x80 != 0 {
			mag = append([]byte{0}, mag...) // libgcrypt writes MPIs signed
		}
		b = appendSexpAtom(b, mag)
		b = append(b, ")\n"...)
	}
	return append(b, "  )\n )\n )"...)
}

// appendSexpAtom writes v as libgcrypt's advanced format does: a token
// when it can be one, a quoted string when it is printable, hex otherwise.
func appendSexpAtom(b, v []byte) []byte {
	switch sexpEncoding(v) {
	case 2:
		return append(b, v...)
	case 1:
		b = append(b, '"')
		for _, c := range v {
			switch c {
			case '\b':
				b = append(b, `\b`...)
			case '\t':
				b = append(b, `\t`...)
			case '\v':
				b = append(b, `\v`...)
			case '\n':
				b = append(b, `\n`...)
			case '\f':
				b = append(b, `\f`...)
			case '\r':
				b = append(b, `\r`...)
			case '"':
				b = append(b, `\"`...)
			case '\'':
				b = append(b, `\'`...)
			case '\\':
				b = append(b, `\\`...)
			default:
				b = append(b, c)
			}
		}
		return append(b, '"')
	}
	b = append(b, '#')
	b = append(b, strings.ToUpper(hex.EncodeToString(v))...)
	return append(b, '#')
}

const sexpTokenSpecials = "-./_:*+="

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// sexpEncoding is libgcrypt's choice: 0 hex, 1 quoted string, 2 token.
func sexpEncoding(v []byte) int {
	if len(v) == 0 {
		return 1
	}
	if v[0]&0x80 != 0 || v[0] == 0 {
		return 0
	}
	token := true
	for _, c := range v {
		if (c < 0x20 || c >= 0x7f && c <= 0xa0) && !strings.ContainsRune("\b\t\v\n\f\r\"'\\", rune(c)) {
			return 0
		}
		if token && !isAlnum(c) && !strings.ContainsRune(sexpTokenSpecials, rune(c)) {
			token = false
		}
	}
	if token && !(v[0] >= '0' && v[0] <= '9') {
		return 2
	}
	return 1
}

// sexp is a parsed S-expression with the span of its text.
type sexp struct {
	isList     bool
	list       []*sexp
	atom       []byte
	start, end int
}

// head returns the first element of a list when it is an atom.
func (s *sexp) head() string {
	if !s.isList || len(s.list) == 0 || s.list[0].isList {
		return ""
	}
	return string(s.list[0].atom)
}

// child returns the first sub-list whose head is name.
func (s *sexp) child(name string) *sexp {
	for _, c := range s.list {
		if c.head() == name {
			return c
		}
	}
	return nil
}

const maxSexpDepth = 16

func lineOf(text []byte, off int) int {
	return bytes.Count(text[:min(off, len(text))], []byte("\n")) + 1
}

// parseSexp parses one S-expression in libgcrypt's advanced format
// (tokens, "quoted strings", #hex#, |base64|, and length-prefixed
// verbatim strings), followed only by white space.
func parseSexp(text []byte) (*sexp, error) {
	p := sexpParser{text: text}
	p.skipSpace()
	if p.pos >= len(text) {
		return nil, errors.New("it is empty")
	}
	s, err := p.parse(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(text) {
		return nil, fmt.Errorf("line %d: text after the end of the expression", lineOf(text, p.pos))
	}
	return s, nil
}

type sexpParser struct {
	text []byte
	pos  int
}

func (p *sexpParser) skipSpace() {
	for p.pos < len(p.text) {
		switch p.text[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

func (p *sexpParser) errorf(format string, args ...any) error {
	return fmt.Errorf("line %d: %s", lineOf(p.text, p.pos), fmt.Sprintf(format, args...))
}

func (p *sexpParser) parse(depth int) (*sexp, error) {
	if depth > maxSexpDepth {
		return nil, p.errorf("lists nested more than %d deep", maxSexpDepth)
	}
	start := p.pos
	c := p.text[p.pos]
	switch {
	case c == '(':
		p.pos++
		s := &sexp{isList: true, start: start}
		for {
			p.skipSpace()
			if p.pos >= len(p.text) {
				return nil, p.errorf("a list opened on line %d is not closed", lineOf(p.text, start))
			}
			if p.text[p.pos] == ')' {
				p.pos++
				s.end = p.pos
				return s, nil
			}
			e, err := p.parse(depth + 1)
			if err != nil {
				return nil, err
			}
			s.list = append(s.list, e)
		}
	case c == ')':
		return nil, p.errorf("unbalanced ')'")
	case c == '"':
		v, err := p.quoted()
		return &sexp{atom: v, start: start, end: p.pos}, err
	case c == '#':
		v, err := p.delimited('#', func(b []byte) ([]byte, error) {
			b = bytes.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v' {
					return -1
				}
				return r
			}, b)
			v, err := hex.AppendDecode(nil, b)
			if err != nil {
				return nil, errors.New("not an even number of hex digits") // no digit of a key in an error
			}
			return v, nil
		})
		return &sexp{atom: v, start: start, end: p.pos}, err
	case c == '|':
		v, err := p.delimited('|', func(b []byte) ([]byte, error) {
			v, err := base64.StdEncoding.AppendDecode(nil, bytes.Join(bytes.Fields(b), nil))
			if err != nil {
				return nil, errors.New("not base64")
			}
			return v, nil
		})
		return &sexp{atom: v, start: start, end: p.pos}, err
	case c >= '0' && c <= '9':
		n := 0
		for p.pos < len(p.text) && p.text[p.pos] >= '0' && p.text[p.pos] <= '9' {
			n = n*10 + int(p.text[p.pos]-'0')
			if n > len(p.text) {
				return nil, p.errorf("a length prefix runs past the end")
			}
			p.pos++
		}
		if p.pos >= len(p.text) || p.text[p.pos] != ':' || p.pos+1+n > len(p.text) {
			return nil, p.errorf("a number is not a length prefix of a verbatim string")
		}
		p.pos++
		v := bytes.Clone(p.text[p.pos : p.pos+n])
		p.pos += n
		return &sexp{atom: v, start: start, end: p.pos}, nil
	case isAlnum(c) || strings.IndexByte(sexpTokenSpecials, c) >= 0:
		for p.pos < len(p.text) && (isAlnum(p.text[p.pos]) || strings.IndexByte(sexpTokenSpecials, p.text[p.pos]) >= 0) {
			p.pos++
		}
		return &sexp{atom: bytes.Clone(p.text[start:p.pos]), start: start, end: p.pos}, nil
	}
	return nil, p.errorf("unexpected character %q", c)
}

// delimited reads text up to the closing delim and decodes it.
func (p *sexpParser) delimited(delim byte, decode func([]byte) ([]byte, error)) ([]byte, error) {
	start := p.pos
	end := bytes.IndexByte(p.text[p.pos+1:], delim)
	if end < 0 {
		return nil, p.errorf("a %c-delimited string is not closed", delim)
	}
	p.pos += 1 + end + 1
	v, err := decode(p.text[start+1 : start+1+end])
	if err != nil {
		p.pos = start
		return nil, p.errorf("bad %c-delimited string: %v", delim, err)
	}
	return v, nil
}

// quoted reads a quoted string with libgcrypt's escapes.
func (p *sexpParser) quoted() ([]byte, error) {
	start := p.pos
	p.pos++
	var v []byte
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		p.pos++
		switch c {
		case '"':
			return v, nil
		case '\\':
			if p.pos >= len(p.text) {
				break
			}
			e := p.text[p.pos]
			p.pos++
			switch e {
			case 'b':
				v = append(v, '\b')
			case 't':
				v = append(v, '\t')
			case 'v':
				v = append(v, '\v')
			case 'n':
				v = append(v, '\n')
			case 'f':
				v = append(v, '\f')
			case 'r':
				v = append(v, '\r')
			case '"', '\'', '\\':
				v = append(v, e)
			case '\n': // line continuation
				if p.pos < len(p.text) && p.text[p.pos] == '\r' {
					p.pos++
				}
			case '\r':
				if p.pos < len(p.text) && p.text[p.pos] == '\n' {
					p.pos++
				}
			case 'x':
				if p.pos+2 > len(p.text) {
					return nil, p.errorf("a \\x escape is cut short")
				}
				d, err := hex.DecodeString(string(p.text[p.pos : p.pos+2]))
				if err != nil {
					return nil, p.errorf("bad \\x escape")
				}
				v = append(v, d[0])
				p.pos += 2
			case '0', '1', '2', '3':
				if p.pos+2 > len(p.text) {
					return nil, p.errorf("an octal escape is cut short")
				}
				o := []byte{e, p.text[p.pos], p.text[p.pos+1]}
				n := 0
				for _, d := range o {
					if d < '0' || d > '7' {
						return nil, p.errorf("bad octal escape")
					}
					n = n*8 + int(d-'0')
				}
				v = append(v, byte(n))
				p.pos += 2
			default:
				return nil, p.errorf("unknown escape \\%c", e)
			}
		default:
			v = append(v, c)
		}
	}
	p.pos = start
	return nil, p.errorf("a quoted string is not closed")
}
