package omemoxml

import (
	"bytes"
	"encoding/xml"
)

// Element finds the first element named {space}local in raw (a whole
// stanza as xmpptest.Stanza.Raw holds it; the element may be at any depth)
// and returns it written out on its own, with its namespace declared on it
// and on each child, so that a parser reading it alone (package omemo/wire)
// sees the names it had inside the stanza. attrs are the element's own
// attributes without a namespace (node, id, sid...). ok is false when raw
// is not well-formed or holds no such element.
//
// The OMEMO peers of the tests use it to take <encrypted/>, <list/> and
// <bundle/> out of messages, PEP results and events, and the node out of
// <items/> and <publish/>.
func Element(raw []byte, space, local string) (el []byte, attrs map[string]string, ok bool) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	dec.Strict = true
	var out bytes.Buffer
	enc := xml.NewEncoder(&out)
	depth := 0 // > 0 while inside the element found
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if t.Name.Space != space || t.Name.Local != local {
					continue
				}
				attrs = make(map[string]string, len(t.Attr))
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local != "xmlns" {
						attrs[a.Name.Local] = a.Value
					}
				}
			}
			depth++
			if enc.EncodeToken(plain(t)) != nil {
				return nil, nil, false
			}
		case xml.EndElement:
			if depth == 0 {
				continue
			}
			depth--
			if enc.EncodeToken(xml.EndElement{Name: t.Name}) != nil {
				return nil, nil, false
			}
			if depth == 0 {
				if enc.Flush() != nil {
					return nil, nil, false
				}
				return out.Bytes(), attrs, true
			}
		case xml.CharData:
			if depth > 0 && enc.EncodeToken(t) != nil {
				return nil, nil, false
			}
		}
	}
}

// plain keeps an element's name and its attributes without a namespace;
// the encoder declares the element's namespace itself.
func plain(t xml.StartElement) xml.StartElement {
	s := xml.StartElement{Name: t.Name}
	for _, a := range t.Attr {
		if a.Name.Space == "" && a.Name.Local != "xmlns" {
			s.Attr = append(s.Attr, a)
		}
	}
	return s
}
