package component

import (
	"encoding/xml"
	"errors"
	"io"

	"mellium.im/xmpp/component"
)

// Namespaces the component reads or writes.
const (
	nsAccept     = component.NSAccept
	nsClient     = "jabber:client"
	nsServer     = "jabber:server"
	nsStanzas    = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsReceipts   = "urn:xmpp:receipts"
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsCaps       = "http://jabber.org/protocol/caps"
	nsPing       = "urn:xmpp:ping"
	nsOtrdesk    = "urn:otrdesk:0"
	nsCarbons    = "urn:xmpp:carbons:2"
	nsHints      = "urn:xmpp:hints"
)

// maxDepth bounds the nesting kept from an incoming stanza; deeper elements
// are read and discarded.
const maxDepth = 16

// elem is one incoming stanza as a small tree: enough to route it. Text is
// the character data directly inside the element, exactly as decoded (no
// trimming: OTR whitespace tags live in trailing spaces and tabs).
type elem struct {
	name xml.Name
	attr []xml.Attr
	kids []*elem
	text []byte
	// truncated is set on the root when the stanza exceeded the read budget;
	// its content is then incomplete and must not be relayed.
	truncated bool
}

func (e *elem) get(local string) string {
	for _, a := range e.attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// child returns the first child with the given local name in namespace ns
// ("" matches the stanza namespaces).
func (e *elem) child(ns, local string) *elem {
	for _, k := range e.kids {
		if k.name.Local != local {
			continue
		}
		if ns == "" && isStanzaNS(k.name.Space) || ns != "" && k.name.Space == ns {
			return k
		}
	}
	return nil
}

func isStanzaNS(ns string) bool {
	return ns == "" || ns == nsAccept || ns == nsClient || ns == nsServer
}

var errNotStart = errors.New("component: expected a start element")

// readElem reads one element whose start token has already been read, up to
// its end token. At most budget bytes of text and attributes are kept;
// beyond that the rest is consumed and the root is marked truncated.
func readElem(r xml.TokenReader, start xml.StartElement, budget int) (*elem, error) {
	root := &elem{name: start.Name, attr: copyAttrs(start.Attr)}
	budget -= attrSize(start.Attr)
	stack := []*elem{root}
	skipped := 0 // depth of discarded elements below the top of stack
	for len(stack) > 0 {
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if skipped > 0 || len(stack) >= maxDepth || budget < 0 {
				skipped++
				if len(stack) >= maxDepth || budget < 0 {
					root.truncated = true
				}
				continue
			}
			budget -= attrSize(t.Attr) + len(t.Name.Local) + len(t.Name.Space)
			e := &elem{name: t.Name, attr: copyAttrs(t.Attr)}
			top := stack[len(stack)-1]
			top.kids = append(top.kids, e)
			stack = append(stack, e)
		case xml.EndElement:
			if skipped > 0 {
				skipped--
				continue
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if skipped > 0 {
				continue
			}
			budget -= len(t)
			if budget < 0 {
				root.truncated = true
				continue
			}
			top := stack[len(stack)-1]
			top.text = append(top.text, t...)
		}
	}
	return root, nil
}

func copyAttrs(a []xml.Attr) []xml.Attr {
	if len(a) == 0 {
		return nil
	}
	return append([]xml.Attr(nil), a...)
}

func attrSize(a []xml.Attr) int {
	n := 0
	for _, x := range a {
		n += len(x.Name.Local) + len(x.Name.Space) + len(x.Value) + 4
	}
	return n
}

// toks builds an outgoing stanza as a token list.
type toks []xml.Token

func (t toks) start(space, local string, attr ...string) toks {
	s := xml.StartElement{Name: xml.Name{Space: space, Local: local}}
	for i := 0; i+1 < len(attr); i += 2 {
		if attr[i+1] == "" {
			continue
		}
		s.Attr = append(s.Attr, xml.Attr{Name: xml.Name{Local: attr[i]}, Value: attr[i+1]})
	}
	return append(t, s)
}

func (t toks) end(space, local string) toks {
	return append(t, xml.EndElement{Name: xml.Name{Space: space, Local: local}})
}

func (t toks) empty(space, local string, attr ...string) toks {
	return t.start(space, local, attr...).end(space, local)
}

func (t toks) text(space, local string, text []byte, attr ...string) toks {
	t = t.start(space, local, attr...)
	if len(text) > 0 {
		t = append(t, xml.CharData(text))
	}
	return t.end(space, local)
}

// stanzaError appends an RFC 6120 <error/> with a defined condition.
func (t toks) stanzaError(typ, cond, text string) toks {
	t = t.start("", "error", "type", typ).empty(nsStanzas, cond)
	if text != "" {
		t = t.text(nsStanzas, "text", []byte(text))
	}
	return t.end("", "error")
}
