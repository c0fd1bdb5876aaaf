//go:build !linux

package supervisor

import (
	"errors"
	"fmt"
)

// Replicas need Linux: mount namespaces for their private /tmp, the parent-death signal,
// and a spawning thread that may leave the daemon's namespace on its own.
var errNotLinux = fmt.Errorf("faasd runs functions and services on Linux only: %w", errors.ErrUnsupported)

type forkStarter struct{ groups *containment }

func newForkStarter(string) *forkStarter { return &forkStarter{} }

func (*forkStarter) start(*launch) (running, error) { return running{}, errNotLinux }

func (*forkStarter) probe(string) (isolation, error) { return isolateTmpdir, errNotLinux }

// Shim is the spawn shim, which exists on Linux only.
func Shim() error { return errNotLinux }
