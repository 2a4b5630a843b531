package xmpptest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

func TestParseStanza(t *testing.T) {
	tests := []struct {
		name, in      string
		wantBody      string
		hasBody       bool
		outside       string
		children      []string
		from, to, typ string
	}{
		{
			name:     "chat with trailing whitespace",
			in:       "<message from='a@x/r' to='b@x' type='chat' id='1'><body>hi &lt;there&gt; \t  \t</body><private xmlns='urn:xmpp:carbons:2'/></message>",
			wantBody: "hi <there> \t  \t", hasBody: true,
			outside:  "<message from='a@x/r' to='b@x' type='chat' id='1'><private xmlns='urn:xmpp:carbons:2'/></message>",
			children: []string{"body", "private"}, from: "a@x/r", to: "b@x", typ: "chat",
		},
		{
			name: "empty body", in: "<message><body/></message>", hasBody: true, outside: "<message></message>",
			children: []string{"body"},
		},
		{
			name: "body of a nested element is not the body", in: "<message><result><body>x</body></result></message>",
			outside: "<message><result><body>x</body></result></message>", children: []string{"result"},
		},
		{
			name: "body in another namespace is not the body", in: "<message><body xmlns='urn:other'>x</body></message>",
			outside: "<message><body xmlns='urn:other'>x</body></message>", children: []string{"body"},
		},
		{
			name: "first body only", in: "<message><body>one</body><body xml:lang='de'>zwei</body></message>",
			wantBody: "one", hasBody: true, outside: "<message><body xml:lang='de'>zwei</body></message>",
			children: []string{"body", "body"},
		},
		{
			name: "presence", in: "\n <presence from='a@x/r'><show>away</show></presence>", outside: "<presence from='a@x/r'><show>away</show></presence>",
			children: []string{"show"}, from: "a@x/r",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := ParseStanza([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if st.Body != tc.wantBody || st.HasBody != tc.hasBody {
				t.Errorf("body %q (%v), want %q (%v)", st.Body, st.HasBody, tc.wantBody, tc.hasBody)
			}
			if got := string(st.OutsideBody()); got != tc.outside {
				t.Errorf("outside body\n got %s\nwant %s", got, tc.outside)
			}
			var names []string
			for _, c := range st.Children {
				names = append(names, c.Local)
			}
			if strings.Join(names, ",") != strings.Join(tc.children, ",") {
				t.Errorf("children %v, want %v", names, tc.children)
			}
			if st.From != tc.from || st.To != tc.to || st.Type != tc.typ {
				t.Errorf("attributes %s", st)
			}
			if !strings.Contains(tc.in, string(st.Raw)) {
				t.Errorf("raw %q is not from the input", st.Raw)
			}
		})
	}
}

func TestParseStanzaErrors(t *testing.T) {
	for _, in := range []string{"", "<message>", "<message><body>x</message>", "text", "</message>", "<a:b xmlns:a='x'><c></a:b>"} {
		if st, err := ParseStanza([]byte(in)); err == nil {
			t.Errorf("ParseStanza(%q) = %s, want an error", in, st)
		}
	}
}

func TestStreamReader(t *testing.T) {
	stream := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='abc' from='example.org'>" +
		"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features> \n " +
		"<message from='a@example.org/r'><body>one</body></message>" +
		"<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>go away</text></stream:error>"
	sr := newStreamReader(strings.NewReader(stream))
	st, err := sr.next()
	if err != nil || st.Name != "features" || st.Space != nsStream || !st.HasChild(nsTLS, "starttls") {
		t.Fatalf("features: %s, %v", st, err)
	}
	var f features
	if err := xml.Unmarshal(st.Raw, &f); err != nil || f.StartTLS == nil {
		t.Fatalf("features %s: %+v, %v", st.Raw, f, err)
	}
	st, err = sr.next()
	if err != nil || st.Body != "one" || string(st.Raw) != "<message from='a@example.org/r'><body>one</body></message>" {
		t.Fatalf("message: %s %q, %v", st, st.Raw, err)
	}
	_, err = sr.next()
	var se *StreamError
	if !errors.As(err, &se) || se.Condition != "host-unknown" || se.Text != "go away" {
		t.Fatalf("stream error: %v", err)
	}

	sr = newStreamReader(strings.NewReader("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'></stream:stream>"))
	if _, err := sr.next(); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("closed stream: %v", err)
	}
	sr = newStreamReader(strings.NewReader("<html><body>not xmpp</body></html>"))
	if _, err := sr.next(); err == nil {
		t.Fatal("a non-stream was accepted")
	}
}

func TestRecorderCap(t *testing.T) {
	big := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><body>" +
		strings.Repeat("a", 5000) + "</body></message>"
	sr := newStreamReader(strings.NewReader(big))
	sr.rec.limit = 4096
	if _, err := sr.next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized element: %v", err)
	}
}

func FuzzParseStanza(f *testing.F) {
	for _, seed := range []string{
		"<message to='a@b'><body>x \t</body></message>",
		"<message><body/><body>2</body></message>",
		"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>",
		"<presence><show>chat</show><priority>5</priority></presence>",
		"<message><body>a&amp;b&#x9;</body><x:y xmlns:x='u'/></message>",
		"<message><body>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		st, err := ParseStanza(in)
		if err != nil {
			return
		}
		if !bytes.Contains(in, st.Raw) || len(st.Raw) == 0 {
			t.Fatalf("raw %q not taken from input %q", st.Raw, in)
		}
		out := st.OutsideBody()
		if len(out) > len(st.Raw) || (st.HasBody && len(out) == len(st.Raw)) {
			t.Fatalf("OutsideBody %q of %q", out, st.Raw)
		}
		if st.HasBody && !bytes.HasPrefix(st.Raw[st.bodyStart:], []byte("<")) {
			t.Fatalf("body offset %d in %q", st.bodyStart, st.Raw)
		}
	})
}

func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      `"plain"`,
		`a"b\c`:      `"a\"b\\c"`,
		"tab\tand é": `"tab\009and \195\169"`,
	} {
		if got := luaQuote(in); got != want {
			t.Errorf("luaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
