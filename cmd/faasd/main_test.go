package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary stand in for faasd where the supervisor re-executes its
// own binary as the spawn shim (an unprivileged daemon does, to probe namespaces).
func TestMain(m *testing.M) {
	actAsShim()
	os.Exit(m.Run())
}
