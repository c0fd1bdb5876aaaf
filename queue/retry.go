package queue

import (
	"net/http"
	"time"
)

// Retry says when a failed attempt is tried again: up to MaxAttempts tries in all, the
// delay starting at Base and doubling up to Max. Redeliveries after a crash count as
// attempts too, so a call that kills its host cannot loop forever.
type Retry struct {
	MaxAttempts int
	Base        time.Duration
	Max         time.Duration
}

// retryable reports whether an answer is worth another try. 0 stands for no answer at
// all (a refused or broken connection); 429 and 5xx are how a function, the gateway in
// front of it or a callback receiver say "not now". Any other answer is final: trying a
// 400 again gives another 400.
func retryable(status int) bool {
	return status == 0 || status == http.StatusTooManyRequests || status >= 500
}

// next decides after attempt (1-based, the try that just ended with status) whether to
// try again, and after how long.
func (r Retry) next(attempt, status int) (bool, time.Duration) {
	if !retryable(status) || attempt >= r.MaxAttempts {
		return false, 0
	}
	d := r.Base
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	return true, min(d, r.Max)
}
