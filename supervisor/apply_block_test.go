package supervisor

import (
	"strconv"
	"testing"
	"time"

	"faasd/config"
	"faasd/internal/testkit"
)

func TestStatusAnswersWhileAControllerIsBusy(t *testing.T) {
	s, _ := realSupervisor(t)
	s.Apply(map[string]*config.Function{"fn": workload(t, "fn", nil, nil)})
	s.ports.mu.Lock()
	locked := true
	defer func() {
		if locked {
			s.ports.mu.Unlock()
		}
	}()
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for i := range 100 {
			s.Apply(map[string]*config.Function{"fn": workload(t, "fn", map[string]string{"VERSION": strconv.Itoa(i)}, nil)})
		}
	}()
	answered := make(chan struct{})
	go func() {
		<-applied
		s.Status("fn")
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("Apply and Status blocked behind a busy controller")
	}
	s.ports.mu.Unlock()
	locked = false
	testkit.WaitFor(t, 10*time.Second, "the last spec", func() bool {
		r, _ := s.Route("fn")
		return r.Spec().Env["VERSION"] == "99"
	})
}
