package latency

import (
	"sync"
	"testing"
	"time"
)

func TestBucketsAreContiguousAndOrdered(t *testing.T) {
	prev := time.Duration(0)
	for i := range N {
		up := upper(i)
		if up <= prev {
			t.Fatalf("bucket %d: upper %v not above the previous %v", i, up, prev)
		}
		// The last value of a bucket lands in it, the first of the next one does not.
		if got := bucket(up - time.Microsecond); got != i {
			t.Fatalf("bucket(%v) = %d, want %d", up-time.Microsecond, got, i)
		}
		if i < N-1 {
			if got := bucket(up); got != i+1 {
				t.Fatalf("bucket(%v) = %d, want %d", up, got, i+1)
			}
		}
		prev = up
	}
	if got := bucket(time.Hour); got != N-1 {
		t.Errorf("an hour lands in bucket %d, want the last (%d)", got, N-1)
	}
	if got := bucket(-time.Second); got != 0 {
		t.Errorf("a negative duration lands in bucket %d, want 0", got)
	}
}

func TestQuantileOfTheDifference(t *testing.T) {
	var h Histogram
	// Before the first snapshot: not part of the difference.
	for range 100 {
		h.Observe(time.Minute)
	}
	from := h.Snapshot()
	for i := range 100 {
		// 1 ms … 100 ms, one each.
		h.Observe(time.Duration(i+1) * time.Millisecond)
	}
	to := h.Snapshot()
	if n := to.Count(&from); n != 100 {
		t.Fatalf("count %d, want 100", n)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{1, 100 * time.Millisecond},
	} {
		got := to.Quantile(&from, tc.q)
		// The bucket's upper bound: at least the true value, at most a quarter octave more.
		if got < tc.want || float64(got) > float64(tc.want)*1.25 {
			t.Errorf("q%v = %v, want %v within a quarter octave above", tc.q, got, tc.want)
		}
	}
	if got := from.Quantile(&from, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %v, want 0", got)
	}
}

func TestObserveIsSafeForConcurrentUse(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.Observe(3 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	var zero Snapshot
	s := h.Snapshot()
	if n := s.Count(&zero); n != 8000 {
		t.Errorf("count %d, want 8000", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(1234 * time.Microsecond)
		}
	})
}
