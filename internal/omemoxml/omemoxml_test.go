package omemoxml

import (
	"strings"
	"testing"

	"otrdesk.im/otrdesk/omemo"
)

// A message Message writes carries the element Encrypted reads back, the
// body escaped and the hint asked for.
func TestMessageEncrypted(t *testing.T) {
	d, err := omemo.NewDevice(omemo.Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	to := omemo.Recipient{Address: omemo.Address{JID: "op@example.org", Device: d.ID()}, Bundle: d.Bundle()}
	enc, err := d.Encrypt([]byte("hi"), []omemo.Recipient{to})
	if err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"", "shop@chat.example.org"} {
		msg := Message(from, "guest-1@chat.example.org", FallbackBody, enc, "no-store")
		got, ok := Encrypted([]byte(msg))
		if !ok || string(got.Marshal()) != string(enc.Marshal()) {
			t.Fatalf("Encrypted(Message) = %v, %v", got, ok)
		}
		if strings.Contains(msg, "from=") != (from != "") || !strings.Contains(msg, "doesn&apos;t") ||
			!strings.Contains(msg, "<no-store xmlns='"+NSHints+"'/>") {
			t.Errorf("message from %q: %s", from, msg)
		}
	}
	if _, ok := Encrypted([]byte("<message><body>no element</body></message>")); ok {
		t.Error("Encrypted found an element in a message without one")
	}
	if _, ok := Encrypted([]byte("<message><encrypted xmlns='" + omemo.NS + "'/></message>")); ok {
		t.Error("Encrypted took an empty element")
	}
}

// Each PEP builder names the node asked for, escaped, and its item is
// the payload, which Element finds in it again.
func TestPEP(t *testing.T) {
	list := omemo.DeviceList{7}.Marshal()
	const node = "n&'"
	for _, c := range []struct {
		xml, space, local string
	}{
		{Publish(node, list), NSPubSub, "publish"},
		{ItemsResult(node, list), NSPubSub, "items"},
		{Event(node, list), NSPubSubEvent, "items"},
		{Items(node), NSPubSub, "items"},
	} {
		_, attrs, ok := Element([]byte(c.xml), c.space, c.local)
		if !ok || attrs["node"] != node {
			t.Errorf("%s: node %q", c.xml, attrs["node"])
		}
		if c.xml == Items(node) {
			continue
		}
		el, _, _ := Element([]byte(c.xml), omemo.NS, "list")
		if got, err := omemo.ParseDeviceList(el); err != nil || len(got) != 1 || got[0] != 7 {
			t.Errorf("%s: the item read as %v, %v", c.xml, got, err)
		}
	}
}

func TestBundleID(t *testing.T) {
	for node, want := range map[string]uint32{omemo.BundleNode(42): 42, omemo.BundleNode(0): 0, omemo.DeviceListNode: 0,
		omemo.NS + ".bundles:x": 0, omemo.NS + ".bundles:4294967296": 0} {
		if id, ok := BundleID(node); ok != (want != 0) || ok && id != want {
			t.Errorf("BundleID(%q) = %d, %v", node, id, ok)
		}
	}
}
