package store

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// invalid builds a validation error: "store: " and the message, matching
// ErrInvalid under errors.Is.
func invalid(format string, args ...any) error {
	return failf(ErrInvalid, format, args...)
}

// failf builds an error whose text is "store: " and the formatted message
// and which matches sentinel (and any %w argument) under errors.Is, without
// repeating the sentinel's own text.
func failf(sentinel error, format string, args ...any) error {
	return &sentinelError{sentinel: sentinel, err: fmt.Errorf(format, args...)}
}

type sentinelError struct{ sentinel, err error }

func (e *sentinelError) Error() string   { return "store: " + e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.sentinel, e.err} }

// unprefix drops a leading "store: " so nested messages read once.
func unprefix(err error) error {
	return prefixless{err}
}

type prefixless struct{ err error }

func (p prefixless) Error() string {
	const pre = "store: "
	s := p.err.Error()
	if len(s) > len(pre) && s[:len(pre)] == pre {
		return s[len(pre):]
	}
	return s
}

func (p prefixless) Unwrap() error { return p.err }

// ValidSkinName reports whether name can name a skin: 1 to 63 characters of
// a-z, 0-9 and '-', starting with a letter or digit, and not starting with
// "guest-" (that prefix belongs to visitor aliases).
func ValidSkinName(name string) error {
	if name == "" {
		return invalid("skin name is empty: use 1 to 63 characters of a-z, 0-9 and '-'")
	}
	if len(name) > 63 {
		return invalid("skin name %q is %d characters long: use at most 63", name, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		case c == '-':
			return invalid("skin name %q starts with '-': start with a-z or 0-9", name)
		default:
			return invalid("skin name %q contains %q: use only a-z, 0-9 and '-'", name, rune(c))
		}
	}
	if strings.HasPrefix(name, "guest-") {
		return invalid("skin name %q starts with \"guest-\", which is reserved for visitor aliases: choose another name", name)
	}
	return nil
}

// validPolicy checks an OTR policy.
func validPolicy(p Policy) error {
	switch p {
	case PolicyRequire, PolicyOpportunistic, PolicyPlaintext:
		return nil
	}
	return invalid("policy %q is not one of %q, %q, %q", string(p), PolicyRequire, PolicyOpportunistic, PolicyPlaintext)
}

// validColor checks a #RRGGBB colour; empty means the widget's default.
func validColor(c string) error {
	if c == "" {
		return nil
	}
	ok := len(c) == 7 && c[0] == '#'
	for i := 1; ok && i < len(c); i++ {
		ok = strings.IndexByte("0123456789abcdefABCDEF", c[i]) >= 0
	}
	if !ok {
		return invalid("colour %q is not of the form #RRGGBB (six hex digits, such as #1a73e8)", c)
	}
	return nil
}

// bareJID parses and normalises a bare JID; what names the field in errors.
func bareJID(what, s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", invalid("%s %q is not a JID (%v): use a bare JID such as alice@example.org", what, s, err)
	}
	if j.Resourcepart() != "" {
		return "", invalid("%s %q has a resource: use the bare JID %s", what, s, j.Bare())
	}
	if j.Localpart() == "" {
		return "", invalid("%s %q has no local part: use a bare JID such as alice@example.org", what, s)
	}
	return j.String(), nil
}

// anyJID parses and normalises any JID (bare or full).
func anyJID(what, s string) (string, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return "", invalid("%s %q is not a JID (%v)", what, s, err)
	}
	return j.String(), nil
}

// origin checks and normalises a web origin: scheme://host[:port].
func origin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", invalid("origin %q is not a URL: use scheme://host[:port] such as https://www.example.com", s)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", invalid("origin %q: use scheme://host[:port] with scheme http or https, such as https://www.example.com", s)
	}
	if u.Opaque != "" || u.Host == "" {
		return "", invalid("origin %q has no host: use scheme://host[:port] such as https://www.example.com", s)
	}
	if u.User != nil {
		return "", invalid("origin %q contains user information: use scheme://host[:port] only", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.HasSuffix(s, "#") {
		return "", invalid("origin %q has a path, query or fragment: use scheme://host[:port] only, such as %s://%s", s, scheme, u.Host)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return "", invalid("origin %q has no host: use scheme://host[:port] such as https://www.example.com", s)
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", invalid("origin %q has port %q: use a number from 1 to 65535", s, port)
		}
		host = strings.ToLower(u.Host[:len(u.Host)-len(port)-1])
		if scheme == "https" && n == 443 || scheme == "http" && n == 80 {
			// Browsers leave the default port out of the Origin header.
			return scheme + "://" + host, nil
		}
		return scheme + "://" + host + ":" + strconv.Itoa(n), nil
	} else if strings.HasSuffix(u.Host, ":") {
		return "", invalid("origin %q ends in ':' with no port: remove it or add a port", s)
	}
	return scheme + "://" + strings.ToLower(u.Host), nil
}

// text checks free text: valid UTF-8, at most max bytes, no control
// characters except newline when multiline is set.
func text(what, s string, max int, multiline bool) error {
	if len(s) > max {
		return invalid("%s is %d bytes long: use at most %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalid("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r == '\n' && multiline {
			continue
		}
		if unicode.IsControl(r) {
			return invalid("%s contains the control character %U: remove it", what, r)
		}
	}
	return nil
}
