//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"os"
	"time"
)

// lockFile does nothing where syscall.Flock does not exist. bbolt's own
// lock still guards the file, but checkFile may then read a store that a
// running otrdesk is writing and call it damaged; otrdesk ships for Linux.
func lockFile(*os.File, time.Duration) error { return nil }
