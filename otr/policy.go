package otr

// Policy is a set of the OTR policy flags of the Protocol-v3 "Policies"
// section. The zero Policy disables OTR: every message passes through
// untouched.
type Policy uint16

const (
	// AllowV2 lets the conversation speak OTR version 2 (no instance tags).
	AllowV2 Policy = 1 << iota
	// AllowV3 lets the conversation speak OTR version 3.
	AllowV3
	// RequireEncryption refuses to send plaintext: Send holds the message,
	// asks the peer to start OTR and sends it once the session is private.
	RequireEncryption
	// SendWhitespaceTag marks plaintext sent before the peer has shown it
	// has no OTR with the whitespace tag.
	SendWhitespaceTag
	// WhitespaceStartAKE starts the AKE when a whitespace-tagged message
	// arrives.
	WhitespaceStartAKE
	// ErrorStartAKE answers an OTR error message with a query.
	ErrorStartAKE
)

// The libotr policy presets.
const (
	PolicyNever         Policy = 0
	PolicyManual        Policy = AllowV2 | AllowV3
	PolicyOpportunistic Policy = AllowV2 | AllowV3 | SendWhitespaceTag | WhitespaceStartAKE | ErrorStartAKE
	PolicyAlways        Policy = AllowV2 | AllowV3 | RequireEncryption | WhitespaceStartAKE | ErrorStartAKE
)

func (p Policy) has(f Policy) bool { return p&f == f }

func (p Policy) enabled() bool { return p&(AllowV2|AllowV3) != 0 }

// allows reports whether the policy allows protocol version v.
func (p Policy) allows(v int) bool {
	switch v {
	case 2:
		return p.has(AllowV2)
	case 3:
		return p.has(AllowV3)
	}
	return false
}
