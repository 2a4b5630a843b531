package omemoxml

import (
	"bytes"
	"encoding/xml"
	"testing"

	"otrdesk.im/otrdesk/omemo/wire"
)

func TestElement(t *testing.T) {
	list := wire.DeviceList{7, 42}.Marshal()
	raw := []byte(`<message from='guest-x@chat.example.org' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'>` +
		`<items node='eu.siacs.conversations.axolotl.devicelist'><item id='current'>` + string(list) + `</item></items></event></message>`)
	el, attrs, ok := Element(raw, wire.NS, "list")
	if !ok {
		t.Fatal("no list found")
	}
	got, err := wire.ParseDeviceList(el)
	if err != nil || len(got) != 2 || got[0] != 7 || got[1] != 42 {
		t.Fatalf("list %s parsed as %v, %v", el, got, err)
	}
	if len(attrs) != 0 {
		t.Errorf("attributes %v, want none (xmlns is not one)", attrs)
	}
	_, attrs, ok = Element(raw, "http://jabber.org/protocol/pubsub#event", "items")
	if !ok || attrs["node"] != wire.DeviceListNode {
		t.Errorf("items node %q (found %v)", attrs["node"], ok)
	}
	// A prefixed namespace inherited from an ancestor is declared on the
	// element written out.
	pre := []byte(`<iq xmlns:o='eu.siacs.conversations.axolotl'><o:list><o:device id='9'/></o:list></iq>`)
	el, _, ok = Element(pre, wire.NS, "list")
	if got, err := wire.ParseDeviceList(el); !ok || err != nil || len(got) != 1 || got[0] != 9 {
		t.Errorf("prefixed list %s: %v, %v", el, got, err)
	}
	if _, _, ok := Element(raw, wire.NS, "bundle"); ok {
		t.Error("found a bundle in a message without one")
	}
	if _, _, ok := Element([]byte(`<message><list xmlns='`+wire.NS+`'>`), wire.NS, "list"); ok {
		t.Error("found an element that never ends")
	}
}

// FuzzElement: Element never panics, and what it finds is one
// well-formed element of the name asked for.
func FuzzElement(f *testing.F) {
	f.Add([]byte(`<message><encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><iv>AAAA</iv></header></encrypted></message>`))
	f.Add([]byte(`<iq xmlns:o='eu.siacs.conversations.axolotl'><o:list><o:device id='9'/></o:list></iq>`))
	f.Add([]byte(`<a><list xmlns='eu.siacs.conversations.axolotl' x='&amp;'>t<!-- c --><![CDATA[<]]></list></a>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		el, _, ok := Element(raw, wire.NS, "list")
		if !ok {
			return
		}
		d := xml.NewDecoder(bytes.NewReader(el))
		d.Strict = true
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("Element wrote %q: %v", el, err)
		}
		start, isStart := tok.(xml.StartElement)
		if !isStart || start.Name.Space != wire.NS || start.Name.Local != "list" {
			t.Fatalf("Element wrote %q, starting with %#v", el, tok)
		}
		if err := d.Skip(); err != nil {
			t.Fatalf("Element wrote %q: %v", el, err)
		}
	})
}
