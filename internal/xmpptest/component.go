package xmpptest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"mellium.im/xmpp/jid"
)

// ErrHandshake is returned when the server refuses a component's handshake
// (wrong secret or unknown component domain).
var ErrHandshake = errors.New("xmpptest: component handshake refused")

// DialComponent connects to the server's XEP-0114 listener as the component
// domain and authenticates with secret.
func (s *Server) DialComponent(ctx context.Context, domain, secret string) (*Client, error) {
	return DialComponent(ctx, s.ComponentAddr, domain, secret)
}

// DialComponent connects to an XEP-0114 listener at addr as the component
// domain and authenticates with secret (the handshake is SHA-1 over the
// stream id and the secret, in hex). The returned Client reads and queues
// stanzas like a c2s client; stanzas it sends must carry a from attribute
// (ejabberd closes the stream otherwise). Refusal is ErrHandshake.
func DialComponent(ctx context.Context, addr, domain, secret string) (*Client, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	j, err := jid.Parse(domain)
	if err != nil {
		return nil, fmt.Errorf("xmpptest: component domain: %w", err)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("xmpptest: dialing component listener %s: %w", addr, err)
	}
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := closeOnDone(ctx, conn)
	sr, err := componentHandshake(conn, domain, secret)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("xmpptest: clearing deadline: %w", err)
	}
	c := &Client{
		jid:       j,
		conn:      conn,
		component: true,
		wake:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go c.readLoop(sr)
	return c, nil
}

func componentHandshake(conn net.Conn, domain, secret string) (*streamReader, error) {
	hdr := "<?xml version='1.0'?><stream:stream xmlns='" + nsComp + "' xmlns:stream='" + nsStream + "' to='" + escape(domain) + "'>"
	if _, err := conn.Write([]byte(hdr)); err != nil {
		return nil, fmt.Errorf("xmpptest: writing component stream header: %w", err)
	}
	sr := newStreamReader(conn)
	if err := sr.readHeader(); err != nil {
		return nil, fmt.Errorf("xmpptest: reading component stream header: %w", err)
	}
	var id string
	for _, a := range sr.header.Attr {
		if a.Name.Space == "" && a.Name.Local == "id" {
			id = a.Value
		}
	}
	if id == "" {
		// Prosody opens the stream without an id, then refuses an unknown
		// domain with a stream error.
		_, err := sr.next()
		var se *StreamError
		if errors.As(err, &se) || errors.Is(err, ErrStreamClosed) {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return nil, errors.New("xmpptest: component stream header without id")
	}
	sum := sha1.Sum([]byte(id + secret))
	if _, err := conn.Write([]byte("<handshake>" + hex.EncodeToString(sum[:]) + "</handshake>")); err != nil {
		return nil, fmt.Errorf("xmpptest: writing handshake: %w", err)
	}
	st, err := sr.next()
	if err != nil {
		var se *StreamError
		if errors.As(err, &se) || errors.Is(err, ErrStreamClosed) {
			return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
		}
		return nil, fmt.Errorf("xmpptest: reading handshake answer: %w", err)
	}
	if st.Name != "handshake" {
		return nil, fmt.Errorf("%w: got <%s>", ErrHandshake, st.Name)
	}
	return sr, nil
}
