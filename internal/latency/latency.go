// Package latency owns a histogram of request durations cheap enough for the request
// path: one atomic add per request into fixed buckets, no lock, no allocation. Readers
// take cumulative snapshots and compute quantiles over the difference of two, so the
// scaler can report the p50 and p99 of the requests that finished between two ticks
// without the request path knowing ticks exist.
package latency

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Buckets are log-linear: one per microsecond below subBuckets µs, then subBuckets per
// power of two, which bounds the error of a quantile to a quarter of an octave (under
// 19 %). The highest octave starts at 2^topExp µs (about 9 minutes); longer requests
// share its last bucket.
const (
	subBits    = 2
	subBuckets = 1 << subBits
	topExp     = 29
	// N is the number of buckets.
	N = topExp * subBuckets
)

// Histogram counts durations. The zero value is ready to use and safe for concurrent use.
type Histogram struct {
	counts [N]atomic.Uint64
}

// Snapshot is a histogram's cumulative counts at one moment.
type Snapshot [N]uint64

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	h.counts[bucket(d)].Add(1)
}

// Snapshot copies the counts. Buckets are read one by one, so a snapshot taken while
// requests finish may count some of them and not others; each count is still exact.
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	for i := range h.counts {
		s[i] = h.counts[i].Load()
	}
	return s
}

// bucket maps a duration to its bucket: below subBuckets µs one bucket per µs, then
// subBuckets per octave.
func bucket(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 0))
	if us < subBuckets {
		return int(us)
	}
	exp := bits.Len64(us) - 1 // us is in [2^exp, 2^(exp+1))
	sub := int(us>>(exp-subBits)) & (subBuckets - 1)
	i := (exp-subBits+1)*subBuckets + sub
	return min(i, N-1)
}

// upper is the largest duration bucket i holds.
func upper(i int) time.Duration {
	if i < subBuckets {
		return time.Duration(i+1) * time.Microsecond
	}
	exp := i/subBuckets + subBits - 1
	sub := uint64(i % subBuckets)
	base := uint64(1) << exp
	return time.Duration(base+(sub+1)*(base>>subBits)) * time.Microsecond
}

// Count is the number of durations counted between from and s (s taken later).
func (s *Snapshot) Count(from *Snapshot) uint64 {
	var n uint64
	for i := range s {
		n += s[i] - from[i]
	}
	return n
}

// Quantile is the q-quantile (0 < q ≤ 1) of the durations counted between from and s,
// as the upper bound of the bucket it falls in; 0 when none were counted.
func (s *Snapshot) Quantile(from *Snapshot, q float64) time.Duration {
	total := s.Count(from)
	if total == 0 {
		return 0
	}
	// The rank of the quantile, rounded up: the p99 of 10 requests is the slowest one.
	rank := uint64(q*float64(total) + 0.999999)
	rank = min(max(rank, 1), total)
	var seen uint64
	for i := range s {
		seen += s[i] - from[i]
		if seen >= rank {
			return upper(i)
		}
	}
	return upper(N - 1)
}
