package omemo

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
)

// The payload of OMEMO 0.3: AES-128-GCM under a fresh random 16-byte key
// and 12-byte IV. The 16-byte tag is not sent with the ciphertext: it is
// appended to the key, and these 32 bytes of key material are what each
// recipient device's Signal session encrypts. The payload element carries
// the ciphertext alone.
const (
	payloadKeySize  = 16
	payloadTagSize  = 16
	payloadIVSize   = 12
	keyMaterialSize = payloadKeySize + payloadTagSize
)

// ErrPayload means the payload did not decrypt under the key material the
// sender's session gave us: it was altered, or the sender is not honest.
var ErrPayload = errors.New("omemo: payload does not authenticate")

// sealPayload encrypts plaintext under a fresh key and IV read from rand
// and returns the key material for the recipients' sessions, the IV and
// the payload.
func sealPayload(rand io.Reader, plaintext []byte) (material, iv, payload []byte, err error) {
	buf := make([]byte, payloadKeySize+payloadIVSize)
	if _, err := io.ReadFull(rand, buf); err != nil {
		return nil, nil, nil, fmt.Errorf("omemo: reading randomness: %w", err)
	}
	key, iv := buf[:payloadKeySize], buf[payloadKeySize:]
	aead, err := newGCM(key, len(iv))
	if err != nil {
		return nil, nil, nil, err
	}
	sealed := aead.Seal(nil, iv, plaintext, nil)
	n := len(sealed) - payloadTagSize
	material = make([]byte, 0, keyMaterialSize)
	material = append(material, key...)
	material = append(material, sealed[n:]...)
	return material, iv, sealed[:n:n], nil
}

// openPayload undoes sealPayload. Key material of 16 bytes is the form of
// Conversations before 2018 (the tag then ends the payload); Gajim still
// reads it and so do we. An IV of 16 bytes is of the same age.
func openPayload(material, iv, payload []byte) ([]byte, error) {
	var key, sealed []byte
	switch len(material) {
	case keyMaterialSize:
		key = material[:payloadKeySize]
		sealed = make([]byte, 0, len(payload)+payloadTagSize)
		sealed = append(sealed, payload...)
		sealed = append(sealed, material[payloadKeySize:]...)
	case payloadKeySize:
		key, sealed = material, payload
	default:
		return nil, fmt.Errorf("%w: %d bytes of key material", ErrPayload, len(material))
	}
	if len(iv) != 12 && len(iv) != 16 {
		return nil, fmt.Errorf("%w: %d-byte iv", ErrPayload, len(iv))
	}
	aead, err := newGCM(key, len(iv))
	if err != nil {
		return nil, err
	}
	if len(sealed) < payloadTagSize {
		return nil, ErrPayload
	}
	plaintext, err := aead.Open(nil, iv, sealed, nil)
	if err != nil {
		return nil, ErrPayload
	}
	return plaintext, nil
}

func newGCM(key []byte, ivSize int) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("omemo: payload cipher: %w", err)
	}
	if ivSize == 12 {
		return cipher.NewGCM(block)
	}
	return cipher.NewGCMWithNonceSize(block, ivSize)
}
