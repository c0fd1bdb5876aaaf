package e2e

import (
	"testing"

	"faasd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
