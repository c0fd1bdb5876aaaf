package supervisor

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffRule(t *testing.T) {
	const never = time.Duration(-1)
	synctest.Test(t, func(t *testing.T) {
		var b backoff
		for i, c := range []struct {
			readyFor time.Duration // before the failure; never: it was not ready
			failures int
			pause    time.Duration
		}{
			{never, 1, 100 * time.Millisecond},
			{never, 2, 200 * time.Millisecond},
			{stableAfter - time.Millisecond, 3, 400 * time.Millisecond}, // ready, not for long enough
			{never, 4, 800 * time.Millisecond},
			{stableAfter, 1, 100 * time.Millisecond}, // stable: the count starts again
			{never, 2, 200 * time.Millisecond},
			{never, 3, 400 * time.Millisecond},
			{never, 4, 800 * time.Millisecond},
			{never, 5, 1600 * time.Millisecond},
			{never, 6, 3200 * time.Millisecond},
			{never, 7, 6400 * time.Millisecond},
			{never, 8, 12800 * time.Millisecond},
			{never, 9, 25600 * time.Millisecond},
			{never, 10, 30 * time.Second}, // at most
			{never, 11, 30 * time.Second},
		} {
			var readyAt time.Time
			if c.readyFor != never {
				readyAt = time.Now()
				time.Sleep(c.readyFor)
			}
			err := errors.New("exit status 1")
			if pause := b.failed(err, readyAt); pause != c.pause || b.failures != c.failures || b.pause() != c.pause || b.lastError != err.Error() {
				t.Fatalf("failure %d: pause %s with %d failures, want %s with %d", i+1, pause, b.failures, c.pause, c.failures)
			}
		}
		b.retryNow()
		if b.pause() > 0 || b.failures != 11 {
			t.Errorf("retry now: pause %s, failures %d", b.pause(), b.failures)
		}
		if b.reset(); b != (backoff{}) {
			t.Errorf("reset: %+v", b)
		}
	})
}
