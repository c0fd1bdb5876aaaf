package supervisor

import "time"

// The restart rule of replicas and services: a run that ends before it has been ready for
// stableAfter is a fast failure, and each one in a row doubles the pause before the next
// start, from baseBackoff up to maxBackoff. A run that was stable starts the count again.
const (
	baseBackoff = 100 * time.Millisecond
	maxBackoff  = 30 * time.Second
	stableAfter = 10 * time.Second
)

// backoff is the failure count of a function or a service, as its status shows it.
type backoff struct {
	failures  int       // fast failures in a row
	lastError string    // of the last failure
	retryAt   time.Time // when the next start may come
}

// failed records the end of a run that had been ready since readyAt (zero: never) and
// returns the pause before the next start.
func (b *backoff) failed(err error, readyAt time.Time) time.Duration {
	now := time.Now()
	if ranStable(readyAt, now) {
		b.failures = 1
	} else {
		b.failures++
	}
	b.lastError = err.Error()
	delay := min(baseBackoff<<min(b.failures-1, 20), maxBackoff)
	b.retryAt = now.Add(delay)
	return delay
}

// ranStable reports whether a run ready since readyAt (zero: never) and ending at now was
// stable: its end is not a fast failure.
func ranStable(readyAt, now time.Time) bool {
	return !readyAt.IsZero() && now.Sub(readyAt) >= stableAfter
}

// pause is how long a start must still wait.
func (b *backoff) pause() time.Duration { return time.Until(b.retryAt) }

// retryNow lifts the pause but keeps the count: a deliberate scale deserves an
// immediate attempt, and a ready service has no retry pending.
func (b *backoff) retryNow() { b.retryAt = time.Time{} }

// reset forgets the failures: a new spec starts afresh.
func (b *backoff) reset() { *b = backoff{} }
