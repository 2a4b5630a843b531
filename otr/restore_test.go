package otr

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// TestDoubleRestoreNoKeystreamReuse: one exported state restored several
// times (two tabs, a reload after a reload that never saved) never sends
// under the same key pair and counter twice, which would repeat the
// AES-CTR keystream; and each restored conversation is still read by the
// peer as it was when the state was saved. The state is taken right after
// the AKE (every key pair derived afresh after the restore) and after
// traffic (the saved counters moved ahead).
func TestDoubleRestoreNoKeystreamReuse(t *testing.T) {
	for _, warm := range []int{0, 3} {
		t.Run(fmt.Sprintf("after %d exchanges", warm), func(t *testing.T) {
			a, b := securePair(t, PolicyAlways, PolicyAlways)
			for i := 0; i < warm; i++ {
				a.send("warm")
				pump(t, a, b)
				b.send("up")
				pump(t, a, b)
			}
			saved := a.c.Export()
			type use struct {
				senderID, recipID uint32
				ctr               uint64
			}
			seen := map[use]string{}
			for copyN := 0; copyN < 6; copyN++ {
				r, err := Restore(saved, Config{})
				if err != nil {
					t.Fatal(err)
				}
				peer := &endpoint{t: t, name: "bob", c: cloneConv(b.c)}
				for i := 0; i < 3; i++ {
					text := fmt.Sprintf("copy %d message %d", copyN, i)
					out, err := r.Send([]byte(text))
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range out {
						bin, err := DecodeMessage(m)
						if err != nil {
							t.Fatal(err)
						}
						d, ok := parseData(bin, 11)
						if !ok {
							t.Fatalf("not a Data message: %.20q", m)
						}
						u := use{d.senderID, d.recipID, binary.BigEndian.Uint64(d.ctr[:])}
						if prev, dup := seen[u]; dup {
							t.Fatalf("%q and %q share key ids %d/%d and counter %#x", prev, text, u.senderID, u.recipID, u.ctr)
						}
						seen[u] = text
						peer.receive(m)
					}
					if peer.lastShown() != text || len(peer.errs) != 0 {
						t.Fatalf("the peer shows %q, errors %v; want %q", peer.lastShown(), peer.errs, text)
					}
				}
			}
		})
	}
}

// TestRestoreJumpFromRand: the counter jump comes from Config.Rand, so a
// restore with a broken source of randomness fails instead of falling
// back to a predictable jump.
func TestRestoreJumpFromRand(t *testing.T) {
	a, _ := securePair(t, PolicyAlways, PolicyAlways)
	saved := a.c.Export()
	_, err := Restore(saved, Config{Rand: bytes.NewReader(nil)})
	if err == nil {
		t.Fatal("restored without randomness")
	}
	fixed := func() *bytes.Reader { return bytes.NewReader(bytes.Repeat([]byte{0xa5}, 4096)) }
	r1, err := Restore(saved, Config{Rand: fixed()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := r1.Send([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	bin, _ := DecodeMessage(out[0])
	d, _ := parseData(bin, 11)
	if got, want := binary.BigEndian.Uint64(d.ctr[:]), uint64(1<<32+0xa5a5a5a5a5+1); got != want {
		t.Fatalf("first counter after the restore %#x, want %#x", got, want)
	}
}
