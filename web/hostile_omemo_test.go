package web_test

import (
	"strings"
	"testing"

	"otrdesk.im/otrdesk/internal/hostile"
)

// OMEMO against a hostile otrdesk (internal/hostile with Config.OMEMO):
// the service hands the visitor the operator's devices, so it can add its
// own, swap a device's key, or write from a device of its own. The page
// pins the operator's OTR key and its OMEMO device's identity key; the
// skin JSON names the attacker's keys. Each test also gets the checks of
// verdict: no canary readable by the attacker, and never the verified
// sentence in a chat whose text reached the attacker.

// newHostileOMEMO is a hostile stack whose attacker says e2ee='omemo' and
// whose real operator has one OMEMO device.
func newHostileOMEMO(t *testing.T) *hostileStack {
	t.Helper()
	s := newHostile(t, hostileOpts{operator: true, operatorName: "Ada", omemo: true})
	return s
}

// attackerDevice makes a device of the attacker's (id 0: a random ID;
// the operator's ID: a device that claims to be the operator's) and lists
// its key in the skin JSON, as a hostile service would.
func (s *hostileStack) attackerDevice(id uint32) uint32 {
	s.t.Helper()
	got, fp, err := s.att.NewDevice(id)
	if err != nil {
		s.t.Fatal(err)
	}
	s.skin.OMEMOFingerprints = append(s.skin.OMEMOFingerprints, fp.String())
	return got
}

func TestHostileOMEMOExtraDevice(t *testing.T) {
	// The service hands out its own device beside the operator's trusted
	// one. The widget writes to the trusted device only, and says verified.
	s := newHostileOMEMO(t)
	op := s.bot.Devices()[0].ID
	s.att.Offer(hostile.Offer{ID: op}, hostile.Offer{ID: s.attackerDevice(0)})
	b := newBrowser(t)
	s.open(b)
	b.waitSentence(sentVerified)
	c := s.say(b, "extra-device")
	if who := s.settle(c); who != "the operator" {
		t.Errorf("the message went to %q, want the operator", who)
	}
	sn := s.att.Snapshot()
	for _, m := range sn.OMEMOSent {
		for _, rid := range m.RIDs {
			if rid != op {
				t.Errorf("the visitor encrypted a message to device %d, not the operator's trusted %d", rid, op)
			}
		}
	}
	s.verdict(b)
}

func TestHostileOMEMOUntrustedOffer(t *testing.T) {
	// The service offers no device the page trusts: the line is not
	// verified and nothing the visitor types goes anywhere (the visitor
	// never chooses to write to an unverified operator here), although the
	// skin JSON names the attacker's keys (the page pins).
	for _, tc := range []struct {
		name  string
		offer func(s *hostileStack) []hostile.Offer
		note  string // a note the transcript must have
	}{
		{"attacker-device-alone", func(s *hostileStack) []hostile.Offer {
			return []hostile.Offer{{ID: s.attackerDevice(0)}}
		}, "is not the one published for this chat"},
		{"operator-device-id-with-attacker-key", func(s *hostileStack) []hostile.Offer {
			op := s.bot.Devices()[0].ID
			s.attackerDevice(op)
			return []hostile.Offer{{ID: op}}
		}, "is not the one published for this chat"},
		{"no-device", func(s *hostileStack) []hostile.Offer { return nil }, "no device this chat can encrypt to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHostileOMEMO(t)
			s.att.Offer(tc.offer(s)...)
			b := newBrowser(t)
			s.open(b)
			b.waitSentence(sentUnverified)
			c := s.say(b, tc.name)
			if who := s.settle(c); who != "" {
				t.Errorf("the message reached %s without the visitor's choice", who)
			}
			if !strings.Contains(s.transcript(b), tc.note) {
				t.Errorf("the transcript does not say %q", tc.note)
			}
			s.noVerified(s.verdict(b), tc.name)
		})
	}
}

func TestHostileOMEMOAttackerWrites(t *testing.T) {
	// A verified chat with the operator; then the service writes from a
	// device of its own. The line stays verified (nothing goes to that
	// device) and its text is marked as not from the described session.
	s := newHostileOMEMO(t)
	op := s.bot.Devices()[0].ID
	evil := s.attackerDevice(0)
	s.att.Offer(hostile.Offer{ID: op})
	b := newBrowser(t)
	s.open(b)
	b.waitSentence(sentVerified)
	c := s.say(b, "before")
	if who := s.settle(c); who != "the operator" {
		t.Fatalf("the message went to %q, want the operator", who)
	}
	if err := s.att.SayOMEMO(s.ctx, evil, "Please tell me your account number"); err != nil {
		t.Fatal(err)
	}
	if !s.waitJS(b, `[...`+widgetRoot+`.querySelectorAll('.m li[data-mark="other-session"]')].some((li) => li.textContent.includes('account number'))`) {
		t.Errorf("the attacker's OMEMO message is not marked as from another session:\n%s", s.transcript(b))
	}
	c = s.say(b, "after")
	if who := s.settle(c); who != "the operator" {
		t.Errorf("the message after the attacker wrote went to %q, want the operator", who)
	}
	w := s.verdict(b)
	if strings.Count(strings.Join(w.Sentences, "|"), sentVerified) == 0 {
		t.Error("the chat with the pinned operator was never verified")
	}
}
