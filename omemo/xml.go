package omemo

import "otrdesk.im/otrdesk/omemo/wire"

// The XML and the fingerprint live in package omemo/wire, which does not
// link the Signal library; these names keep the engine's API whole, so a
// caller of the engine needs only this package.

// NS is the namespace of OMEMO as deployed clients speak it (XEP-0384
// version 0.3).
const NS = wire.NS

// DeviceListNode is the PEP node an account publishes its device list on.
const DeviceListNode = wire.DeviceListNode

// Bounds on what the parsers accept (see package omemo/wire).
const (
	MaxElementBytes = wire.MaxElementBytes
	MaxDevices      = wire.MaxDevices
	MaxPreKeys      = wire.MaxPreKeys
	MaxKeys         = wire.MaxKeys
	MaxKeyBytes     = wire.MaxKeyBytes
	MaxPayloadBytes = wire.MaxPayloadBytes
	MaxDeviceID     = wire.MaxDeviceID
	maxKeyID        = wire.MaxKeyID
)

// Errors of the parsers.
var (
	ErrMalformed   = wire.ErrMalformed
	ErrTooLarge    = wire.ErrTooLarge
	ErrFingerprint = wire.ErrFingerprint
)

// The elements and keys, as package omemo/wire defines them.
type (
	PublicKey   = wire.PublicKey
	DeviceList  = wire.DeviceList
	PreKey      = wire.PreKey
	Bundle      = wire.Bundle
	Key         = wire.Key
	Encrypted   = wire.Encrypted
	Fingerprint = wire.Fingerprint
)

// BundleNode is the PEP node a device publishes its bundle on.
func BundleNode(device uint32) string { return wire.BundleNode(device) }

// ParseDeviceList reads a <list/> element.
func ParseDeviceList(data []byte) (DeviceList, error) { return wire.ParseDeviceList(data) }

// ParseBundle reads a <bundle/> element.
func ParseBundle(data []byte) (*Bundle, error) { return wire.ParseBundle(data) }

// ParseEncrypted reads an <encrypted/> element.
func ParseEncrypted(data []byte) (*Encrypted, error) { return wire.ParseEncrypted(data) }

// ParseFingerprint reads a fingerprint in any form the clients show.
func ParseFingerprint(s string) (Fingerprint, error) { return wire.ParseFingerprint(s) }

func parsePublicKey(b []byte) (PublicKey, bool) { return wire.ParsePublicKey(b) }
