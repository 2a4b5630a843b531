package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ChatRecord is what the store keeps about one finished chat: when, how long
// the visitor waited, how long it lasted, whether it was encrypted. Nothing
// about who took part or what was said.
type ChatRecord struct {
	Skin      string
	Start     time.Time     // when the visitor's first message arrived
	Wait      time.Duration // until an operator was assigned (kept to the millisecond)
	Duration  time.Duration // from assignment to the end (kept to the millisecond)
	Encrypted bool          // OTR was up at some point of the chat
}

// SkinStats are one skin's per-day statistics.
type SkinStats struct {
	Skin string
	Days []DayStats // days that had chats, oldest first
}

// DayStats summarise one UTC day of a skin's chats.
type DayStats struct {
	Day            string // "2006-01-02", UTC
	Chats          int
	MedianWait     time.Duration
	MedianDuration time.Duration
	EncryptedShare float64 // encrypted chats / Chats, 0 to 1
}

// dayKeyLayout is the day prefix of chat record keys.
const dayKeyLayout = "20060102"

// Chat record, version 1; its key under stats/<skin> is the UTC day of Start
// (8 ASCII digits, YYYYMMDD) ‖ uint64 big-endian sequence:
//
//	byte     1 (record version)
//	varint   start, Unix milliseconds
//	uvarint  wait, milliseconds
//	uvarint  duration, milliseconds
//	byte     flags: bit 0 encrypted
//
// About 12 bytes a chat.
const chatRecordV1 = 1

func encodeChat(r ChatRecord) []byte {
	b := make([]byte, 0, 1+10+5+5+1)
	b = append(b, chatRecordV1)
	b = binary.AppendVarint(b, r.Start.UnixMilli())
	b = binary.AppendUvarint(b, uint64(r.Wait.Milliseconds()))
	b = binary.AppendUvarint(b, uint64(r.Duration.Milliseconds()))
	var flags byte
	if r.Encrypted {
		flags |= 1
	}
	return append(b, flags)
}

// decodeChat decodes a value stored under stats/<skin>/.
func decodeChat(skin string, b []byte) (ChatRecord, error) {
	r, ok := decodeChatFields(b)
	if !ok {
		return ChatRecord{}, failf(ErrCorrupt, "a chat record of skin %q is damaged", skin)
	}
	r.Skin = skin
	return r, nil
}

func decodeChatFields(b []byte) (r ChatRecord, ok bool) {
	var ver, flags byte
	var start int64
	var wait, dur uint64
	if ver, b, ok = readByte(b); !ok || ver != chatRecordV1 {
		return r, false
	}
	if start, b, ok = readVarint(b); !ok {
		return r, false
	}
	// Durations are stored in milliseconds and must fit time.Duration.
	const maxMillis = uint64(1<<63-1) / uint64(time.Millisecond)
	if wait, b, ok = readUvarint(b); !ok || wait > maxMillis {
		return r, false
	}
	if dur, b, ok = readUvarint(b); !ok || dur > maxMillis {
		return r, false
	}
	if flags, b, ok = readByte(b); !ok || flags&^1 != 0 {
		return r, false
	}
	r.Start = time.UnixMilli(start).UTC()
	r.Wait = time.Duration(wait) * time.Millisecond
	r.Duration = time.Duration(dur) * time.Millisecond
	r.Encrypted = flags&1 != 0
	return r, len(b) == 0
}

// dayKey is the key prefix of a day.
func dayKey(t time.Time) []byte {
	return []byte(t.UTC().Format(dayKeyLayout))
}

// RecordChat appends one finished chat to the skin's statistics.
func (s *Store) RecordChat(r ChatRecord) error {
	if err := ValidSkinName(r.Skin); err != nil {
		return err
	}
	if r.Start.IsZero() {
		return invalid("chat record of skin %s has no start time: set Start", r.Skin)
	}
	if y := r.Start.UTC().Year(); y < 1000 || y > 9999 {
		return invalid("chat record of skin %s starts in the year %d: set Start to the real time", r.Skin, y)
	}
	if r.Wait < 0 || r.Duration < 0 {
		return invalid("chat record of skin %s has a negative wait or duration", r.Skin)
	}
	v := encodeChat(r)
	day := dayKey(r.Start)
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketStats).CreateBucketIfNotExists([]byte(r.Skin))
		if err != nil {
			return fmt.Errorf("store: stats of skin %s: creating bucket: %w", r.Skin, err)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("store: stats of skin %s: next sequence: %w", r.Skin, err)
		}
		if err := b.Put(binary.BigEndian.AppendUint64(day, seq), v); err != nil {
			return fmt.Errorf("store: stats of skin %s: writing: %w", r.Skin, err)
		}
		return nil
	})
}

// Stats summarises the skin's chats per UTC day, from the day of since on.
// A skin that neither exists nor has statistics gives ErrNotFound.
func (s *Store) Stats(skin string, since time.Time) (SkinStats, error) {
	out := SkinStats{Skin: skin}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStats).Bucket([]byte(skin))
		if b == nil {
			if tx.Bucket(bucketSkins).Get([]byte(skin)) == nil {
				return failf(ErrNotFound, "skin %q does not exist and has no statistics", skin)
			}
			return nil
		}
		var (
			cur       []byte
			waits     []time.Duration
			durs      []time.Duration
			encrypted int
		)
		flush := func() {
			if len(waits) == 0 {
				return
			}
			day, _ := time.Parse(dayKeyLayout, string(cur))
			out.Days = append(out.Days, DayStats{
				Day:            day.Format(time.DateOnly),
				Chats:          len(waits),
				MedianWait:     median(waits),
				MedianDuration: median(durs),
				EncryptedShare: float64(encrypted) / float64(len(waits)),
			})
			waits, durs, encrypted = waits[:0], durs[:0], 0
		}
		c := b.Cursor()
		for k, v := c.Seek(dayKey(since)); k != nil; k, v = c.Next() {
			if len(k) != len(dayKeyLayout)+8 {
				return failf(ErrCorrupt, "stats of skin %q: key %x is damaged", skin, k)
			}
			if cur == nil || !bytes.Equal(k[:len(dayKeyLayout)], cur) {
				flush()
				cur = append(cur[:0], k[:len(dayKeyLayout)]...)
				if _, err := time.Parse(dayKeyLayout, string(cur)); err != nil {
					return failf(ErrCorrupt, "stats of skin %q: day %q is damaged", skin, cur)
				}
			}
			r, err := decodeChat(skin, v)
			if err != nil {
				return err
			}
			waits = append(waits, r.Wait)
			durs = append(durs, r.Duration)
			if r.Encrypted {
				encrypted++
			}
		}
		flush()
		return nil
	})
	if err != nil {
		return SkinStats{Skin: skin}, err
	}
	return out, nil
}

// PurgeStats deletes every chat record of every skin from days before the
// UTC day of before, and returns how many it deleted.
func (s *Store) PurgeStats(before time.Time) (int, error) {
	n := 0
	limit := dayKey(before)
	err := s.db.Update(func(tx *bolt.Tx) error {
		stats := tx.Bucket(bucketStats)
		var skins [][]byte
		err := stats.ForEachBucket(func(k []byte) error {
			skins = append(skins, bytes.Clone(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, skin := range skins {
			b := stats.Bucket(skin)
			var doomed [][]byte
			c := b.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
				doomed = append(doomed, bytes.Clone(k))
			}
			for _, k := range doomed {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			n += len(doomed)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: purging statistics: %w", err)
	}
	return n, nil
}

// median returns the median of d (the mean of the middle two for an even
// count); it sorts d.
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	m := len(d) / 2
	if len(d)%2 == 1 {
		return d[m]
	}
	return d[m-1] + (d[m]-d[m-1])/2
}
