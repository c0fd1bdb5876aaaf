package supervisor

import (
	"testing"
	"testing/synctest"
	"time"
)

// What the route tells the proxy of a failing function: the proxy answers at once while
// Failing is not nil, and waits on Endpoints' channel otherwise.

func routeOf(t *testing.T, s *Supervisor, name string) *Route {
	t.Helper()
	r, ok := s.Route(name)
	if !ok {
		t.Fatalf("no route for %s", name)
	}
	return r
}

func TestRouteIsFailingFromAFastFailureUntilAReplicaIsReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"READY_DELAY": "1s"})))
		advance(time.Second)
		r := routeOf(t, s, "fn")
		if f := r.Failing(); f != nil {
			t.Fatalf("a ready function is failing: %+v", f)
		}
		// Ready for less than ten seconds, then gone: a fast failure. A request held
		// for a replica (waiting on changed) learns of it at once.
		advance(3 * time.Second)
		_, changed := r.Endpoints()
		crashed := time.Now()
		m.started("workload")[0].crash("3")
		synctest.Wait()
		if !isClosed(changed) {
			t.Fatal("the failure woke nobody waiting for the route")
		}
		want := Failing{Since: crashed, Failures: 1, LastError: "process exited: exit status 3", RetryAt: crashed.Add(100 * time.Millisecond)}
		if f := r.Failing(); f == nil || *f != want {
			t.Fatalf("after a fast failure: route failing %+v, want %+v", f, want)
		}
		if st := status(t, s, "fn"); st.State != "failing" {
			t.Errorf("status %+v", st)
		}
		// The replacement crashes at start too: the same run of failures, the next pause.
		advance(100 * time.Millisecond)
		m.started("workload")[1].crash("4")
		synctest.Wait()
		want = Failing{Since: crashed, Failures: 2, LastError: "process exited: exit status 4", RetryAt: time.Now().Add(200 * time.Millisecond)}
		if f := r.Failing(); f == nil || *f != want {
			t.Fatalf("after a second failure: route failing %+v, want %+v", f, want)
		}
		// The next one comes up: the function serves again and is not failing.
		_, changed = r.Endpoints()
		advance(200*time.Millisecond + time.Second)
		if f, eps := r.Failing(), endpoints(t, s, "fn"); f != nil || len(eps) != 1 || !isClosed(changed) {
			t.Fatalf("recovered: route failing %+v, endpoints %v", f, eps)
		}
		if st := r.set.Load(); st.failing != nil {
			t.Errorf("a recovered function still publishes %+v", st.failing)
		}
		if st := status(t, s, "fn"); st.State != "ready" {
			t.Errorf("status %+v", st)
		}
	})
}

func TestEndOfAStableRunIsNotFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"READY_DELAY": "1s"})))
		advance(time.Second + stableAfter)
		m.started("workload")[0].crash("3")
		synctest.Wait()
		// Its replacement starts in 100 ms: requests wait for it instead of failing.
		if f, st := routeOf(t, s, "fn").Failing(), status(t, s, "fn"); f != nil || st.State != "starting" || st.LastError != "process exited: exit status 3" {
			t.Errorf("route failing %+v, status %+v", f, st)
		}
	})
}

func TestFailingFunctionWithAnOldReplicaServingIsNotFailingForCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, m := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "1"})))
		synctest.Wait()
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"VERSION": "2", "EXIT_AT_START": "1"})))
		advance(time.Second)
		r := routeOf(t, s, "fn")
		if r.set.Load().failing == nil {
			t.Fatal("the broken new spec does not make the function failing")
		}
		if f := r.Failing(); f != nil {
			t.Fatalf("callers are turned away while the old replica serves: %+v", f)
		}
		// Once the old replica is gone too, nothing serves: callers are told why.
		m.started("workload")[0].crash("3")
		synctest.Wait()
		if f := r.Failing(); f == nil || f.LastError != "process exited: exit status 3" {
			t.Fatalf("no replica and failing: route failing %+v", f)
		}
	})
}

func TestFunctionAtZeroIsNotFailingUntilItsWakeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := pretendSupervisor(t)
		f := pretendFunction(t, "fn", nil)
		f.Command = []string{"missing"}
		s.Apply(one(f))
		advance(time.Second)
		r := routeOf(t, s, "fn")
		if r.Failing() == nil {
			t.Fatal("a function whose program is missing is not failing")
		}
		if err := s.Scale("fn", 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if f := r.Failing(); f != nil {
			t.Fatalf("asleep at zero, the route says failing: %+v", f)
		}
		// A request wakes it and waits; the new try fails and ends the wait at once.
		_, changed := r.Endpoints()
		r.Wake()
		synctest.Wait()
		if f := r.Failing(); f == nil || f.Since != time.Now() || !isClosed(changed) {
			t.Fatalf("after a failed wake: route failing %+v", f)
		}
	})
}

func TestChangedSpecEndsFailing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _ := pretendSupervisor(t)
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"EXIT_AT_START": "1"})))
		advance(time.Second)
		r := routeOf(t, s, "fn")
		if r.Failing() == nil {
			t.Fatal("a crash-looping function is not failing")
		}
		s.Apply(one(pretendFunction(t, "fn", map[string]string{"READY_DELAY": "1s"})))
		synctest.Wait()
		// The new spec's replica is starting: requests wait for it.
		if f := r.Failing(); f != nil {
			t.Fatalf("a new spec is failing before it failed: %+v", f)
		}
		advance(time.Second)
		if eps := endpoints(t, s, "fn"); len(eps) != 1 {
			t.Fatalf("endpoints %v", eps)
		}
	})
}
