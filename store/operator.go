package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Operator is what the store remembers about an operator across restarts.
type Operator struct {
	JID    string // bare JID, normalised; the key
	OnDuty bool   // "on"/"off" command: gets new chats only while on duty
	Nick   string // display name set with "nick NAME"; "" means the skin's or "Operator"
}

// Operator record, version 1 (the key is the bare JID):
//
//	byte    1 (record version)
//	byte    flags: bit 0 on duty
//	string  nick (uvarint length ‖ bytes)
const operatorRecordV1 = 1

func encodeOperator(o Operator) []byte {
	b := make([]byte, 0, 3+len(o.Nick))
	b = append(b, operatorRecordV1)
	var flags byte
	if o.OnDuty {
		flags |= 1
	}
	b = append(b, flags)
	return appendString(b, o.Nick)
}

// decodeOperator decodes the value stored under operators/<jid>.
func decodeOperator(jid string, b []byte) (Operator, error) {
	o, ok := decodeOperatorFields(b)
	if !ok {
		return Operator{}, failf(ErrCorrupt, "operator %q: the stored record is damaged", jid)
	}
	o.JID = jid
	return o, nil
}

func decodeOperatorFields(b []byte) (o Operator, ok bool) {
	var ver, flags byte
	if ver, b, ok = readByte(b); !ok || ver != operatorRecordV1 {
		return o, false
	}
	if flags, b, ok = readByte(b); !ok || flags&^1 != 0 {
		return o, false
	}
	o.OnDuty = flags&1 != 0
	if o.Nick, b, ok = readString(b); !ok {
		return o, false
	}
	return o, len(b) == 0
}

// PutOperator creates or replaces an operator's record.
func (s *Store) PutOperator(o Operator) error {
	j, err := bareJID("operator", o.JID)
	if err != nil {
		return err
	}
	o.JID = j
	if err := text("nick of "+j, o.Nick, maxNick, false); err != nil {
		return fmt.Errorf("store: operator %s: %w", j, unprefix(err))
	}
	v := encodeOperator(o)
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketOperators).Put([]byte(j), v); err != nil {
			return fmt.Errorf("store: operator %s: writing: %w", j, err)
		}
		return nil
	})
}

// Operator returns the record of the operator with the given bare JID, or
// ErrNotFound.
func (s *Store) Operator(jid string) (Operator, error) {
	j, err := bareJID("operator", jid)
	if err != nil {
		return Operator{}, err
	}
	return getOne(s, bucketOperators, j, decodeOperator, func() error {
		return failf(ErrNotFound, "operator %s does not exist", j)
	})
}

// Operators returns every operator record, in JID order.
func (s *Store) Operators() ([]Operator, error) {
	return listAll(s, bucketOperators, decodeOperator)
}

// DeleteOperator removes an operator's record, or returns ErrNotFound.
func (s *Store) DeleteOperator(jid string) error {
	j, err := bareJID("operator", jid)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOperators)
		if b.Get([]byte(j)) == nil {
			return failf(ErrNotFound, "operator %s does not exist", j)
		}
		if err := b.Delete([]byte(j)); err != nil {
			return fmt.Errorf("store: operator %s: deleting: %w", j, err)
		}
		return nil
	})
}
