package xmpptest

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// XML namespaces the harness speaks.
const (
	nsClient   = "jabber:client"
	nsStream   = "http://etherx.jabber.org/streams"
	nsStreams  = "urn:ietf:params:xml:ns:xmpp-streams"
	nsTLS      = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL     = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind     = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession  = "urn:ietf:params:xml:ns:xmpp-session"
	nsStanzas  = "urn:ietf:params:xml:ns:xmpp-stanzas"
	nsPing     = "urn:xmpp:ping"
	nsDiscoInf = "http://jabber.org/protocol/disco#info"
	nsCarbons  = "urn:xmpp:carbons:2"
	nsMAM      = "urn:xmpp:mam:2"
	nsComp     = "jabber:component:accept"
)

// maxElement caps one top-level element read from a stream. Prosody refuses
// stanzas over 512 KiB, so anything larger is a broken or hostile peer.
const maxElement = 4 << 20

// Errors of the stanza reader.
var (
	// ErrStreamClosed is returned once the server has closed the XML stream.
	ErrStreamClosed = errors.New("xmpptest: stream closed by the server")
	// ErrTooLarge is returned for a top-level element over 4 MiB.
	ErrTooLarge = errors.New("xmpptest: element too large")
)

// Stanza is one top-level element received on a stream (message, presence,
// iq, or a negotiation element such as stream:features).
type Stanza struct {
	Name               string // local name: "message", "presence", "iq", ...
	Space              string // namespace of the element ("jabber:client" for stanzas)
	Type, From, To, ID string

	// Body is the text of the first <body/> child, byte-exact (the XML
	// decoder only normalises line ends, as XML requires). HasBody tells an
	// empty body from none.
	Body    string
	HasBody bool

	// Children names the direct child elements in document order, so tests
	// can check for hints such as {urn:xmpp:hints no-store}.
	Children []xml.Name

	// Raw is the whole element exactly as the server sent it (namespace
	// declarations inherited from the stream header are not repeated).
	Raw []byte

	bodyStart, bodyEnd int // offsets of the first <body/> element in Raw
}

// OutsideBody returns Raw with the first <body/> element cut out, for tests
// that check that no plaintext leaks into other elements or attributes.
func (s Stanza) OutsideBody() []byte {
	if !s.HasBody || s.bodyEnd <= s.bodyStart || s.bodyEnd > len(s.Raw) {
		return s.Raw
	}
	out := make([]byte, 0, len(s.Raw)-(s.bodyEnd-s.bodyStart))
	out = append(out, s.Raw[:s.bodyStart]...)
	return append(out, s.Raw[s.bodyEnd:]...)
}

// HasChild reports whether the stanza has a direct child element with the
// given namespace and local name.
func (s Stanza) HasChild(space, local string) bool {
	for _, n := range s.Children {
		if n.Space == space && n.Local == local {
			return true
		}
	}
	return false
}

// String is a short description for test failures. It leaves out the body.
func (s Stanza) String() string {
	return fmt.Sprintf("<%s type=%q from=%q to=%q id=%q body=%d bytes>", s.Name, s.Type, s.From, s.To, s.ID, len(s.Body))
}

// ParseStanza parses one standalone XML element, such as a stanza logged by
// a test or a fragment of a capture. Unprefixed elements without an xmlns
// are taken to be in jabber:client.
func ParseStanza(raw []byte) (Stanza, error) {
	rec := newRecorder(bytes.NewReader(raw))
	dec := xml.NewDecoder(rec)
	dec.DefaultSpace = nsClient
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return Stanza{}, fmt.Errorf("xmpptest: parsing stanza: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return readElement(dec, rec, t, off)
		case xml.CharData, xml.ProcInst, xml.Comment:
			continue
		default:
			return Stanza{}, fmt.Errorf("xmpptest: parsing stanza: unexpected %T", tok)
		}
	}
}

// recorder keeps the bytes the XML decoder consumed so that whole elements
// can be sliced out by decoder offset. It implements io.ByteReader, so the
// decoder reads through it without buffering of its own and offsets map
// one-to-one onto recorded bytes.
type recorder struct {
	r     *bufio.Reader
	limit int // cap on buffered bytes (maxElement)
	buf   []byte
	base  int64 // stream offset of buf[0]
}

func newRecorder(r io.Reader) *recorder {
	return &recorder{r: bufio.NewReaderSize(r, 16<<10), limit: maxElement}
}

func (r *recorder) ReadByte() (byte, error) {
	b, err := r.r.ReadByte()
	if err != nil {
		return 0, err
	}
	if len(r.buf) >= r.limit {
		return 0, ErrTooLarge
	}
	r.buf = append(r.buf, b)
	return b, nil
}

func (r *recorder) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	b, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = b
	return 1, nil
}

// forget drops recorded bytes before stream offset off.
func (r *recorder) forget(off int64) {
	n := off - r.base
	if n <= 0 {
		return
	}
	if n > int64(len(r.buf)) {
		n = int64(len(r.buf))
	}
	rest := copy(r.buf, r.buf[n:])
	r.buf = r.buf[:rest]
	r.base += n
}

// slice copies the recorded bytes between two stream offsets.
func (r *recorder) slice(from, to int64) []byte {
	a, b := from-r.base, to-r.base
	if a < 0 || b > int64(len(r.buf)) || a > b {
		return nil
	}
	return bytes.Clone(r.buf[a:b])
}

// readElement reads the rest of the element opened by start (whose start tag
// began at stream offset off) and returns it as a Stanza.
func readElement(dec *xml.Decoder, rec *recorder, start xml.StartElement, off int64) (Stanza, error) {
	st := Stanza{Name: start.Name.Local, Space: start.Name.Space}
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "type":
			st.Type = a.Value
		case "from":
			st.From = a.Value
		case "to":
			st.To = a.Value
		case "id":
			st.ID = a.Value
		}
	}
	var (
		depth     = 1
		inBody    bool
		body      strings.Builder
		bodyStart int64
	)
	for depth > 0 {
		tokOff := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Stanza{}, fmt.Errorf("xmpptest: reading <%s>: %w", st.Name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 1 {
				st.Children = append(st.Children, t.Name)
				if !st.HasBody && t.Name.Local == "body" && t.Name.Space == st.Space {
					st.HasBody, inBody, bodyStart = true, true, tokOff
				}
			}
			depth++
		case xml.EndElement:
			depth--
			if depth == 1 && inBody {
				inBody = false
				st.bodyStart = int(bodyStart - off)
				st.bodyEnd = int(dec.InputOffset() - off)
			}
		case xml.CharData:
			if inBody {
				body.Write(t)
			}
		}
	}
	st.Body = body.String()
	st.Raw = rec.slice(off, dec.InputOffset())
	return st, nil
}

// StreamError is a <stream:error/> sent by the server.
type StreamError struct {
	Condition string
	Text      string
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("xmpptest: stream error %s: %s", e.Condition, e.Text)
	}
	return "xmpptest: stream error " + e.Condition
}

// streamReader reads one XML stream: the stream header, then top-level
// elements one at a time.
type streamReader struct {
	rec    *recorder
	dec    *xml.Decoder
	opened bool
	header xml.StartElement
}

func newStreamReader(r io.Reader) *streamReader {
	rec := newRecorder(r)
	return &streamReader{rec: rec, dec: xml.NewDecoder(rec)}
}

// readHeader reads up to and including the stream header.
func (sr *streamReader) readHeader() error {
	for !sr.opened {
		tok, err := sr.dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space != nsStream || t.Name.Local != "stream" {
				return fmt.Errorf("xmpptest: expected a stream header, got <%s>", t.Name.Local)
			}
			sr.opened, sr.header = true, t.Copy()
		case xml.EndElement:
			return ErrStreamClosed
		}
	}
	return nil
}

// next returns the next top-level element. A <stream:error/> is returned as
// a *StreamError, the end of the stream as ErrStreamClosed.
func (sr *streamReader) next() (Stanza, error) {
	for {
		off := sr.dec.InputOffset()
		sr.rec.forget(off)
		tok, err := sr.dec.Token()
		if err != nil {
			return Stanza{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !sr.opened {
				if t.Name.Space != nsStream || t.Name.Local != "stream" {
					return Stanza{}, fmt.Errorf("xmpptest: expected a stream header, got <%s>", t.Name.Local)
				}
				sr.opened, sr.header = true, t.Copy()
				continue
			}
			st, err := readElement(sr.dec, sr.rec, t, off)
			if err != nil {
				return Stanza{}, err
			}
			if st.Space == nsStream && st.Name == "error" {
				return Stanza{}, parseStreamError(st)
			}
			return st, nil
		case xml.EndElement:
			return Stanza{}, ErrStreamClosed
		}
	}
}

func parseStreamError(st Stanza) error {
	e := &StreamError{Condition: "undefined-condition"}
	for _, c := range st.Children {
		if c.Space == nsStreams && c.Local != "text" {
			e.Condition = c.Local
			break
		}
	}
	var v struct {
		Text string `xml:"text"`
	}
	if xml.Unmarshal(st.Raw, &v) == nil {
		e.Text = v.Text
	}
	return e
}

// escape returns s escaped for XML text and attribute values.
func escape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
