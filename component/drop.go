package component

// dropReason names why a stanza was not relayed or handled. Every refusal
// has exactly one reason, counted in otrdesk_dropped_stanzas_total under
// the reason's label (the labels are what dashboards and alerts match:
// never rename one). A reason with a stanza error is answered with it.
type dropReason uint8

const (
	dropDisconnected       dropReason = iota // a stanza to send while the stream is down
	dropWriteFailed                          // writing to the stream failed
	dropInternalError                        // handling the stanza panicked
	dropEventQueueFull                       // NotifyAdmins found the router busy
	dropNotForUs                             // addressed to another domain
	dropUnsupportedType                      // groupchat or headline
	dropUnknownAlias                         // guest-<id>@D that does not exist
	dropUnknownSkin                          // <skin>@D that does not exist
	dropTooLarge                             // body over max_body_bytes or a truncated stanza
	dropTooManyFragments                     // an OTR message of more fragments than we relay
	dropBlocked                              // a visitor an operator blocked
	dropNoChat                               // a chat state, receipt or end before any body
	dropTooManyGuests                        // guests_per_skin reached
	dropNewChatRate                          // new_chats_per_minute (or _total) reached
	dropStoreError                           // the store failed
	dropRateLimited                          // guest_messages_per_minute reached
	dropQueueFull                            // too much held for a queued visitor
	dropNotPinnedOperator                    // an operator writing to a chat that is not theirs
	dropStaleCiphertext                      // held ciphertext for an operator who left
	dropExpiredWhileQueued                   // held messages of a visitor who left the queue
	dropPlaintextRefused                     // plaintext under a "require" skin
	dropResumeRefused                        // a wrong, used, ended or blocked resumption secret
	dropPoWRequired                          // over the new-chat rate: answered with a proof-of-work challenge
	dropPoWInvalid                           // over the new-chat rate with a stamp that does not verify: a new challenge
	dropBadOMEMO                             // a malformed OMEMO <encrypted/> element
	dropOTRInOMEMOChat                       // an OTR message (either side's) in a chat that uses OMEMO
	dropKeysRefused                          // OMEMO keys a widget hands over that are not kept
	dropBadDeviceListEvent                   // an operator's pushed OMEMO device list that does not parse
	dropUnexpectedEvent                      // a PEP event that is not an operator's device list for its skin
	numDropReasons
)

// dropReasons gives each reason its metric label and its stanza error
// (type and condition; none when the stanza is dropped silently).
var dropReasons = [numDropReasons]struct{ label, typ, cond string }{
	dropDisconnected:       {"disconnected", "", ""},
	dropWriteFailed:        {"write-failed", "", ""},
	dropInternalError:      {"internal-error", "wait", "internal-server-error"},
	dropEventQueueFull:     {"event-queue-full", "", ""},
	dropNotForUs:           {"not-for-us", "", ""},
	dropUnsupportedType:    {"unsupported-type", "modify", "bad-request"},
	dropUnknownAlias:       {"unknown-alias", "cancel", "item-not-found"},
	dropUnknownSkin:        {"unknown-skin", "cancel", "item-not-found"},
	dropTooLarge:           {"too-large", "modify", "policy-violation"},
	dropTooManyFragments:   {"too-many-fragments", "modify", "policy-violation"},
	dropBlocked:            {"blocked", "auth", "forbidden"},
	dropNoChat:             {"no-chat", "", ""},
	dropTooManyGuests:      {"too-many-guests", "wait", "resource-constraint"},
	dropNewChatRate:        {"new-chat-rate", "wait", "resource-constraint"},
	dropStoreError:         {"store-error", "wait", "internal-server-error"},
	dropRateLimited:        {"rate-limited", "wait", "policy-violation"},
	dropQueueFull:          {"queue-full", "wait", "resource-constraint"},
	dropNotPinnedOperator:  {"not-pinned-operator", "auth", "forbidden"},
	dropStaleCiphertext:    {"stale-ciphertext", "", ""},
	dropExpiredWhileQueued: {"expired-while-queued", "", ""},
	dropPlaintextRefused:   {"plaintext-refused", "", ""},
	dropResumeRefused:      {"resume-refused", "cancel", "item-not-found"},
	dropPoWRequired:        {"pow-required", "", ""},
	dropPoWInvalid:         {"pow-invalid", "", ""},
	dropBadOMEMO:           {"omemo-malformed", "modify", "bad-request"},
	dropOTRInOMEMOChat:     {"otr-in-omemo-chat", "", ""},
	dropKeysRefused:        {"omemo-keys-refused", "modify", "not-acceptable"},
	dropBadDeviceListEvent: {"omemo-devicelist-malformed", "", ""},
	dropUnexpectedEvent:    {"pep-event-unexpected", "", ""},
}

func (d dropReason) String() string {
	if d >= numDropReasons {
		return "unknown"
	}
	return dropReasons[d].label
}

// stanzaError is the error type and condition a stanza dropped for d is
// answered with; cond is "" when it is dropped without an answer.
func (d dropReason) stanzaError() (typ, cond string) {
	if d >= numDropReasons {
		return "", ""
	}
	return dropReasons[d].typ, dropReasons[d].cond
}
