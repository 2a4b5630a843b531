package xmpptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"mellium.im/xmpp/jid"
)

const nsBOSH = "http://jabber.org/protocol/httpbind"

// ErrBOSH is wrapped by BOSH errors (terminate with a condition, HTTP
// errors, missing answers).
var ErrBOSH = errors.New("xmpptest: bosh")

// boshBody is what the harness reads from a BOSH response.
type boshBody struct {
	SID       string    `xml:"sid,attr"`
	Type      string    `xml:"type,attr"`
	Condition string    `xml:"condition,attr"`
	Mechs     []string  `xml:"features>mechanisms>mechanism"`
	Bind      *struct{} `xml:"features>bind"`
	Success   *struct{} `xml:"success"`
	Failure   *struct {
		Inner []struct{ XMLName xml.Name } `xml:",any"`
	} `xml:"failure"`
	JID string `xml:"iq>bind>jid"`
}

// boshSession is a minimal BOSH client (XEP-0124/0206), enough to log in the
// way the widget's Strophe.js does.
type boshSession struct {
	url, origin string
	sid         string
	rid         uint64
}

func (b *boshSession) post(ctx context.Context, payload string) (boshBody, error) {
	b.rid++
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, bytes.NewReader([]byte(payload)))
	if err != nil {
		return boshBody{}, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return boshBody{}, fmt.Errorf("%w: %w", ErrBOSH, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return boshBody{}, fmt.Errorf("%w: reading response: %w", ErrBOSH, err)
	}
	if resp.StatusCode != http.StatusOK {
		return boshBody{}, fmt.Errorf("%w: %s", ErrBOSH, resp.Status)
	}
	if b.origin != "" && resp.Header.Get("Access-Control-Allow-Origin") == "" {
		return boshBody{}, fmt.Errorf("%w: no Access-Control-Allow-Origin for origin %s", ErrBOSH, b.origin)
	}
	var body boshBody
	if err := xml.Unmarshal(raw, &body); err != nil {
		return boshBody{}, fmt.Errorf("%w: parsing response: %w", ErrBOSH, err)
	}
	if body.Type == "terminate" {
		return body, fmt.Errorf("%w: session terminated: %s", ErrBOSH, body.Condition)
	}
	return body, nil
}

// wrap puts elements in a request body of the session.
func (b *boshSession) wrap(attrs, inner string) string {
	return "<body xmlns='" + nsBOSH + "' rid='" + strconv.FormatUint(b.rid+1, 10) + "' sid='" + escape(b.sid) + "'" + attrs + ">" + inner + "</body>"
}

// until polls with empty requests until have says the answer is there (at
// most 20 polls; the server holds each for up to wait seconds).
func (b *boshSession) until(ctx context.Context, first boshBody, have func(boshBody) bool) (boshBody, error) {
	body := first
	for i := 0; !have(body); i++ {
		if i == 20 {
			return body, fmt.Errorf("%w: no answer after %d polls", ErrBOSH, i)
		}
		var err error
		if body, err = b.post(ctx, b.wrap("", "")); err != nil {
			return body, err
		}
	}
	return body, nil
}

// BOSHAnonymous logs in on guest.example.org over BOSH with SASL ANONYMOUS,
// as the widget does (session creation, auth, stream restart, bind), sending
// origin as the Origin header ("" for none; when set, the answers must carry
// CORS headers), then terminates the session. It returns the bound JID.
func (s *Server) BOSHAnonymous(ctx context.Context, origin string) (jid.JID, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return jid.JID{}, err
	}
	b := &boshSession{url: s.BOSHURL, origin: origin, rid: binary.BigEndian.Uint64(r[:]) >> 12}
	body, err := b.post(ctx, "<body xmlns='"+nsBOSH+"' xmlns:xmpp='urn:xmpp:xbosh' content='text/xml; charset=utf-8'"+
		" hold='1' wait='10' ver='1.6' xml:lang='en' xmpp:version='1.0' to='"+escape(s.AnonDomain)+"'"+
		" rid='"+strconv.FormatUint(b.rid+1, 10)+"'/>")
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: bosh session creation: %w", err)
	}
	if body.SID == "" {
		return jid.JID{}, fmt.Errorf("%w: session creation answered without sid", ErrBOSH)
	}
	b.sid = body.SID
	if body, err = b.until(ctx, body, func(bb boshBody) bool { return len(bb.Mechs) > 0 }); err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: bosh stream features: %w", err)
	}
	if !contains(body.Mechs, "ANONYMOUS") {
		return jid.JID{}, fmt.Errorf("%w: ANONYMOUS not offered over bosh (offered %v)", ErrNoMechanism, body.Mechs)
	}
	body, err = b.post(ctx, b.wrap("", "<auth xmlns='"+nsSASL+"' mechanism='ANONYMOUS'>=</auth>"))
	if err == nil {
		body, err = b.until(ctx, body, func(bb boshBody) bool { return bb.Success != nil || bb.Failure != nil })
	}
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: bosh sasl: %w", err)
	}
	if body.Failure != nil {
		return jid.JID{}, fmt.Errorf("%w: sasl ANONYMOUS over bosh", ErrAuth)
	}
	body, err = b.post(ctx, b.wrap(" xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true' xml:lang='en' to='"+escape(s.AnonDomain)+"'", ""))
	if err == nil {
		body, err = b.until(ctx, body, func(bb boshBody) bool { return bb.Bind != nil })
	}
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: bosh stream restart: %w", err)
	}
	body, err = b.post(ctx, b.wrap("", "<iq type='set' id='bind-1' xmlns='"+nsClient+"'><bind xmlns='"+nsBind+"'/></iq>"))
	if err == nil {
		body, err = b.until(ctx, body, func(bb boshBody) bool { return bb.JID != "" })
	}
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: bosh bind: %w", err)
	}
	j, err := jid.Parse(body.JID)
	if err != nil {
		return jid.JID{}, fmt.Errorf("xmpptest: bosh bound jid: %w", err)
	}
	// Terminating is courtesy; the JID is what was asked for.
	_, _ = b.post(ctx, b.wrap(" type='terminate'", "<presence type='unavailable' xmlns='"+nsClient+"'/>"))
	return j, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
