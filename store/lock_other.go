//go:build !unix

package store

import (
	"os"
	"time"
)

// lockFile is a no-op where flock does not exist; bbolt's own lock still
// guards the file.
func lockFile(*os.File, time.Duration) error { return nil }
