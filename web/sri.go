package web

import (
	"crypto/sha512"
	"encoding/base64"
)

// sri384 is a Subresource Integrity value for b.
func sri384(b []byte) string {
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}
