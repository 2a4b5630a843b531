package component

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/otr"
)

// encodeSender serialises like the session does, into a discarded buffer.
type encodeSender struct{ b bytes.Buffer }

func (e *encodeSender) send(t toks) error {
	e.b.Reset()
	enc := xml.NewEncoder(&e.b)
	for _, tok := range t {
		if err := enc.EncodeToken(tok); err != nil {
			return err
		}
	}
	return enc.Flush()
}

// BenchmarkRelay measures the component's own work (CPU) per relayed
// message: decode the stanza, route it, encode the relayed stanza, no
// network. The OTR sub-benchmark relays Data messages of the same size as
// the plaintext ones (the target: relaying OTR costs at most 1.05 × relaying plaintext, since
// the component only classifies the body and never decrypts).
func BenchmarkRelay(b *testing.B) {
	plain := strings.Repeat("x", 300)
	data := encoded(otr.Data, visitorTag, tagA)
	data = data[:len(data)-1] + strings.Repeat("A", 300-len(data)) + "."
	b.Run("plaintext", func(b *testing.B) { benchRelay(b, plain) })
	b.Run("otr-data", func(b *testing.B) { benchRelay(b, data) })
}

func benchRelay(b *testing.B, body string) {
	f := newFixture(b, Config{GuestMessagesPerMinute: 1 << 30}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "first")
	alias := aliasOf(b, f, visitor)
	out := &encodeSender{}
	f.c.r.out = out
	in := []string{
		fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='a1'><body>%s</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, visitor, skinJID, body),
		fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='a2'><body>%s</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, op1, alias, body),
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d := xml.NewDecoder(strings.NewReader(in[i%2]))
		tok, err := d.Token()
		if err != nil {
			b.Fatal(err)
		}
		el, err := readElem(d, tok.(xml.StartElement), 1<<20)
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		f.c.r.handle(evStanza{el: el})
	}
}
