package supervisor

import (
	"testing"

	"faasd/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }
