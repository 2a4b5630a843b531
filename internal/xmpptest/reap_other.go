//go:build !linux

package xmpptest

import (
	"syscall"
	"time"
)

func becomeSubreaper()                {}
func reapErlangOrphans(time.Duration) {}
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
