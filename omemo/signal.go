package omemo

import (
	"fmt"

	"go.mau.fi/libsignal/protocol"
)

// libsignal's message parsers index their input before checking its
// length and put the input bytes into an error text, so Signal messages
// are checked here first: what reaches libsignal decodes without a panic.

// parseSignalMessage reads a Signal (Whisper) message: a version byte,
// the protobuf, an 8-byte MAC.
func parseSignalMessage(b []byte) (*protocol.SignalMessage, error) {
	if len(b) < 1+protocol.MacLength+1 || len(b) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: signal message: %d bytes", ErrMalformed, len(b))
	}
	s, err := serializer.SignalMessage.Deserialize(b)
	if err != nil {
		return nil, fmt.Errorf("%w: signal message", ErrMalformed)
	}
	if s.Version != protocol.CurrentVersion {
		return nil, fmt.Errorf("%w: signal message version %d", ErrMalformed, s.Version)
	}
	if _, ok := parsePublicKey(s.RatchetKey); !ok || s.CipherText == nil {
		return nil, fmt.Errorf("%w: signal message fields", ErrMalformed)
	}
	m, err := protocol.NewSignalMessageFromStruct(s, serializer.SignalMessage)
	if err != nil {
		return nil, fmt.Errorf("%w: signal message", ErrMalformed)
	}
	return m, nil
}

// parsePreKeyMessage reads a prekey message: a version byte, then a
// protobuf around the session's first Signal message.
func parsePreKeyMessage(b []byte) (*protocol.PreKeySignalMessage, error) {
	if len(b) < 2 || len(b) > MaxKeyBytes {
		return nil, fmt.Errorf("%w: prekey message: %d bytes", ErrMalformed, len(b))
	}
	s, err := serializer.PreKeySignalMessage.Deserialize(b)
	if err != nil {
		return nil, fmt.Errorf("%w: prekey message", ErrMalformed)
	}
	if s.Version != protocol.CurrentVersion {
		return nil, fmt.Errorf("%w: prekey message version %d", ErrMalformed, s.Version)
	}
	if _, ok := parsePublicKey(s.BaseKey); !ok {
		return nil, fmt.Errorf("%w: prekey message base key", ErrMalformed)
	}
	if _, ok := parsePublicKey(s.IdentityKey); !ok {
		return nil, fmt.Errorf("%w: prekey message identity key", ErrMalformed)
	}
	if _, err := parseSignalMessage(s.Message); err != nil {
		return nil, fmt.Errorf("%w: inside a prekey message", err)
	}
	m, err := protocol.NewPreKeySignalMessageFromStruct(s, serializer.PreKeySignalMessage, serializer.SignalMessage)
	if err != nil {
		return nil, fmt.Errorf("%w: prekey message", ErrMalformed)
	}
	return m, nil
}
