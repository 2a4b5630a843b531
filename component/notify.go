package component

// NotifyAdmins sends text as a chat message from the service JID D to every
// bare JID in Config.Admins (the rotation reminder uses it). It does not
// wait: the message is handed to the router goroutine, and dropped and
// counted when the event queue is full or the stream is down. It reports
// whether the message was handed over while the stream was up. The text
// must be otrdesk's own words, never a relayed body.
func (c *Component) NotifyAdmins(text string) bool {
	if ok, _ := c.Ready(); !ok || len(c.cfg.Admins) == 0 {
		return false
	}
	select {
	case c.events <- evFunc(func(r *router) {
		for _, a := range r.cfg.Admins {
			r.send(toks{}.start(nsAccept, "message", "from", r.service(), "to", a, "type", "chat").
				text("", "body", []byte(text)).end(nsAccept, "message"))
		}
	}):
		return true
	default:
		c.m.drop(dropEventQueueFull)
		return false
	}
}
