//go:build !linux

package supervisor

func diagListeners(int, map[uint64]bool) error { return errNotLinux }
