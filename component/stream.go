package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/stream"
)

// connectLoop dials, handshakes and reads until ctx is done, reconnecting
// with exponential backoff and jitter. A refused handshake before the first
// successful one is a configuration error and ends the loop with
// ErrHandshake.
func (c *Component) connectLoop(ctx context.Context) error {
	handshook := false
	delay := backoffMin
	for ctx.Err() == nil {
		began := time.Now()
		sess, conn, err := c.dial(ctx)
		switch {
		case ctx.Err() != nil:
			if conn != nil {
				conn.Close()
			}
			return nil
		case err != nil:
			if herr := c.refused(err); herr != nil && !handshook {
				c.setReady(false, "handshake refused")
				return herr
			}
			c.setReady(false, "connecting to the XMPP server failed: "+err.Error())
			c.log.Warn("connecting to the XMPP server", "server", c.cfg.Server, "err", err, "retry_in", delay)
		default:
			handshook = true
			c.m.conns.Inc()
			c.connects.Add(1)
			c.setReady(true, "")
			c.log.Info("component stream up", "server", c.cfg.Server)
			c.events <- evConnected{out: &sessionSender{s: sess, conn: conn}}
			err = c.read(ctx, sess, conn)
			conn.Close()
			c.setReady(false, "the component stream was lost; reconnecting")
			c.events <- evDisconnected{}
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("component stream lost", "err", err, "retry_in", delay)
			if time.Since(began) > backoffMax {
				delay = backoffMin
			}
		}
		// Full jitter over the upper half: delay/2 .. delay.
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(delay*2, backoffMax)
	}
	return nil
}

// refused turns a refused handshake into a clear ErrHandshake; other errors
// (connection refused, timeouts, conflicts) give nil: they are transient.
func (c *Component) refused(err error) error {
	var se stream.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Err {
	case "not-authorized":
		return fmt.Errorf("%w: the XMPP server refused the component secret for %s; check component.secret_file", ErrHandshake, c.domain)
	case "host-unknown", "improper-addressing", "host-gone":
		return fmt.Errorf("%w: the XMPP server at %s does not serve the component domain %s (%s); add it to the server's configuration or fix component.domain", ErrHandshake, c.cfg.Server, c.domain, se.Err)
	}
	return nil
}

// dial connects and performs the XEP-0114 handshake.
func (c *Component) dial(ctx context.Context) (*xmpp.Session, net.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", c.cfg.Server)
	if err != nil {
		return nil, nil, fmt.Errorf("component: dialing %s: %w", c.cfg.Server, err)
	}
	sess, err := component.NewSession(dctx, c.domain, []byte(c.cfg.Secret), conn)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("component: handshake as %s: %w", c.domain, err)
	}
	return sess, conn, nil
}

// read hands each top-level stanza to the router until the stream ends.
func (c *Component) read(ctx context.Context, sess *xmpp.Session, conn net.Conn) error {
	stop := context.AfterFunc(ctx, func() {
		sess.Close()
		conn.Close()
	})
	defer stop()
	r := sess.TokenReader()
	defer r.Close()
	// The read budget per stanza: the largest body plus room for metadata.
	budget := c.cfg.MaxBodyBytes + 64<<10
	for {
		tok, err := r.Token()
		if err != nil {
			if err == io.EOF {
				return errors.New("component: the server closed the stream")
			}
			return fmt.Errorf("component: reading the stream: %w", quiet(err))
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue // whitespace keepalive
		}
		el, err := readElem(r, start, budget)
		if err != nil {
			return fmt.Errorf("component: reading a stanza: %w", quiet(err))
		}
		select {
		case c.events <- evStanza{el: el}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sessionSender writes stanzas to a mellium session through its token
// writer (which holds the session's output lock until Close). The router is
// its only user besides Session.Close. The write deadline is set on the
// connection directly: Session.Send with a context would start a goroutine
// per stanza to watch it.
type sessionSender struct {
	s    *xmpp.Session
	conn net.Conn
}

func (w *sessionSender) send(t toks) error {
	if err := w.conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("component: setting the write deadline: %w", err)
	}
	tw := w.s.TokenWriter()
	for _, tok := range t {
		if err := tw.EncodeToken(tok); err != nil {
			tw.Close()
			return fmt.Errorf("component: writing a stanza: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("component: writing a stanza: %w", err)
	}
	return nil
}

// errMalformed replaces XML syntax errors, whose text can quote a piece of
// the input (and so of a body), before they reach a log line.
var errMalformed = errors.New("component: the server sent malformed XML")

func quiet(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w (line %d)", errMalformed, se.Line)
	}
	return err
}
