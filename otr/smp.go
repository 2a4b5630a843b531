package otr

// smpState is the Socialist Millionaires' Protocol state of a session.
type smpState struct{}

func (c *Conversation) onSMP(r *result, s *session, t tlv) error { return nil }
