package ratelimit_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func TestParsePolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want []ratelimit.Window
		err  string
	}{
		{in: "1000/h,100/m", want: []ratelimit.Window{{1000, time.Hour}, {100, time.Minute}}},
		{in: " 5 / second , 10/min ", want: []ratelimit.Window{{5, time.Second}, {10, time.Minute}}},
		{in: "1/day", want: []ratelimit.Window{{1, 24 * time.Hour}}},
		{in: "50/15m", want: []ratelimit.Window{{50, 15 * time.Minute}}},
		{in: "", err: "empty"},
		{in: "100", err: "LIMIT/PERIOD"},
		{in: "0/m", err: "whole number"},
		{in: "-1/m", err: "whole number"},
		{in: "1.5/m", err: "whole number"},
		{in: "10/fortnight", err: "period"},
		{in: "10/500ms", err: "whole seconds"},
		{in: "10/m,20/minute", err: "twice"},
		{in: "1/s,1/m,1/h,1/d,1/2s", err: "at most"},
		{in: strings.Repeat("1/s,", 60), err: "200"},
	}
	for _, tc := range cases {
		p, err := ratelimit.ParsePolicy(tc.in)
		if tc.err != "" {
			require.ErrorIs(t, err, ratelimit.ErrPolicy, tc.in)
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, p.Windows, tc.in)
		again, err := ratelimit.ParsePolicy(p.String())
		require.NoError(t, err)
		assert.Equal(t, p.Windows, again.Windows, "round trip")
	}
	assert.Equal(t, "1000/h,100/m", ratelimit.Standard.String())
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"1000/h,100/m", "1/s", "x", "10/15m", "1/day,2/d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ratelimit.ParsePolicy(s)
		if err != nil {
			if !errors.Is(err, ratelimit.ErrPolicy) {
				t.Fatalf("error does not wrap ErrPolicy: %v", err)
			}
			return
		}
		if len(p.Windows) == 0 || len(p.Windows) > ratelimit.MaxWindows {
			t.Fatalf("%d windows", len(p.Windows))
		}
		for _, w := range p.Windows {
			if w.Limit < 1 || w.Period < time.Second {
				t.Fatalf("bad window %+v", w)
			}
		}
		again, err := ratelimit.ParsePolicy(p.String())
		if err != nil || len(again.Windows) != len(p.Windows) {
			t.Fatalf("round trip of %q: %v", p.String(), err)
		}
	})
}

// reference is the brute-force model of the documented semantics: it
// keeps every admitted request and sums them per aligned window.
type reference struct {
	admitted map[string][]struct {
		at   time.Time
		cost int64
	}
}

func (ref *reference) allow(key string, p ratelimit.Policy, cost int64, now time.Time) (bool, []int64) {
	used := make([]int64, len(p.Windows))
	for i, w := range p.Windows {
		idx := now.UnixNano() / int64(w.Period)
		for _, a := range ref.admitted[key] {
			if a.at.UnixNano()/int64(w.Period) == idx {
				used[i] += a.cost
			}
		}
	}
	ok := true
	for i, w := range p.Windows {
		if used[i]+cost > w.Limit {
			ok = false
		}
	}
	if ok {
		ref.admitted[key] = append(ref.admitted[key], struct {
			at   time.Time
			cost int64
		}{now, cost})
		for i := range used {
			used[i] += cost
		}
	}
	return ok, used
}

// TestMemoryMatchesReference drives random request times, keys and costs
// through the limiter on an injected clock and checks every decision, and
// every window's count, against the brute-force reference; then checks
// the guarantee itself on the admitted requests.
func TestMemoryMatchesReference(t *testing.T) {
	t.Parallel()
	policies := []ratelimit.Policy{
		ratelimit.MustPolicy("", "10/m,3/s"),
		ratelimit.MustPolicy("", "20/h,8/m"),
		ratelimit.MustPolicy("", "5/10s"),
	}
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 42))
		now := time.Date(2026, 11, 22, 10, 59, 30, 0, time.UTC)
		lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
		ref := &reference{admitted: map[string][]struct {
			at   time.Time
			cost int64
		}{}}
		p := policies[int(seed)%len(policies)]
		for step := range 2000 {
			now = now.Add(time.Duration(rng.Int64N(int64(3 * time.Second))))
			key := []string{"a", "b", "c"}[rng.IntN(3)]
			cost := int64(1 + rng.IntN(2))
			got := lim.AllowAt(key, p, cost, now)
			want, used := ref.allow(key, p, cost, now)
			require.Equal(t, want, got.Allowed, "seed %d step %d", seed, step)
			for i := range p.Windows {
				require.Equal(t, used[i], got.Windows[i].Used, "seed %d step %d window %d", seed, step, i)
				require.True(t, got.Windows[i].Reset.After(now))
			}
			if !got.Allowed {
				require.Positive(t, got.RetryAfter)
			}
		}
		// The guarantee, checked directly: no aligned window holds more
		// than its limit.
		for key, reqs := range ref.admitted {
			for _, w := range p.Windows {
				per := map[int64]int64{}
				for _, a := range reqs {
					per[a.at.UnixNano()/int64(w.Period)] += a.cost
				}
				for idx, n := range per {
					require.LessOrEqual(t, n, w.Limit, "key %s window %s #%d", key, w, idx)
				}
			}
		}
	}
}

func TestRefusedRequestConsumesNothing(t *testing.T) {
	t.Parallel()
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	p := ratelimit.MustPolicy("", "1000/h,2/m")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for range 2 {
		require.True(t, lim.AllowAt("k", p, 1, now).Allowed)
	}
	r := lim.AllowAt("k", p, 1, now)
	require.False(t, r.Allowed)
	assert.EqualValues(t, 2, r.Windows[0].Used, "the hour window did not count the refused request")
	assert.Equal(t, time.Minute, r.RetryAfter)
	assert.Equal(t, "2/m", r.Binding().Window.String())
	r = lim.AllowAt("k", p, 1, now.Add(time.Minute))
	require.True(t, r.Allowed)
	assert.EqualValues(t, 3, r.Windows[0].Used)
	// A request costing more than a window's limit is refused, and still
	// consumes nothing.
	r = lim.AllowAt("k", p, 3, now.Add(time.Minute))
	assert.False(t, r.Allowed)
	assert.EqualValues(t, 3, r.Windows[0].Used)
}

// TestSingleTokenBucketDoesNotMeetTheSeed records why the limiter checks
// each window: x/time/rate with rate 1000/h and burst 100 admits more than
// 100 in the first minute and more than 1000 in the first hour.
func TestSingleTokenBucketDoesNotMeetTheSeed(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	bucket := rate.NewLimiter(rate.Limit(1000.0/3600), 100)
	bucket.AllowN(start, 0)
	ours := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	var bMinute, bHour, oMinute, oHour int
	for ms := int64(0); ms < 3600_000; ms += 100 {
		now := start.Add(time.Duration(ms) * time.Millisecond)
		if bucket.AllowN(now, 1) {
			bHour++
			if ms < 60_000 {
				bMinute++
			}
		}
		if ours.AllowAt("k", ratelimit.Standard, 1, now).Allowed {
			oHour++
			if ms < 60_000 {
				oMinute++
			}
		}
	}
	t.Logf("token bucket: %d in the first minute, %d in the hour; gatehouse: %d and %d", bMinute, bHour, oMinute, oHour)
	assert.Greater(t, bMinute, 100)
	assert.Greater(t, bHour, 1000)
	assert.Equal(t, 100, oMinute)
	assert.Equal(t, 1000, oHour)
}

func TestMemoryEvictsIdleKeys(t *testing.T) {
	t.Parallel()
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	p := ratelimit.MustPolicy("", "10/m")
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for minute := range 10 {
		for i := range 20000 {
			lim.AllowAt("k"+string(rune('a'+minute))+itoa(i), p, 1, now.Add(time.Duration(minute)*time.Minute))
		}
	}
	// Ten minutes of 20,000 fresh keys each: only about the last minute's
	// (and what the last sweeps left) stay.
	assert.Less(t, lim.Len(), 3*20000, "idle keys are evicted")
}

func itoa(i int) string {
	var b [8]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[n:])
		}
	}
}

// TestExhaustedNamesTheSpentWindowThatResetsLast is the check before an
// attempt whose failures alone are counted: cost 0 counts nothing, and
// Exhausted says which spent window to wait for.
func TestExhaustedNamesTheSpentWindowThatResetsLast(t *testing.T) {
	t.Parallel()
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	p := ratelimit.MustPolicy("", "2/m,4/h")
	now := time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC)
	check := func(at time.Time) (ratelimit.WindowResult, bool) {
		r := lim.AllowAt("k", p, 0, at)
		return r.Exhausted()
	}
	_, ok := check(now)
	assert.False(t, ok, "nothing spent yet")
	lim.AllowAt("k", p, 1, now)
	_, ok = check(now)
	assert.False(t, ok, "one of two a minute spent")
	lim.AllowAt("k", p, 1, now)
	w, ok := check(now)
	require.True(t, ok)
	assert.Equal(t, "2/m", w.Window.String())
	assert.EqualValues(t, 0, w.Remaining())
	for range 5 {
		_, ok = check(now)
		assert.True(t, ok, "checks with cost 0 count nothing, and do not lift the block")
	}
	next := w.Reset
	_, ok = check(next)
	assert.False(t, ok, "the minute has reset, the hour has two left")
	lim.AllowAt("k", p, 2, next)
	w, ok = check(next)
	require.True(t, ok, "both windows spent")
	assert.Equal(t, "4/h", w.Window.String(), "the hour resets last: waiting for the minute is not enough")
	_, ok = (&ratelimit.Result{}).Exhausted()
	assert.False(t, ok, "a fail-open answer (no windows) blocks nothing")
}

func TestRefusal(t *testing.T) {
	t.Parallel()
	reset := time.Date(2026, 11, 22, 10, 1, 0, 500_000_000, time.UTC)
	w := ratelimit.WindowResult{Window: ratelimit.MustPolicy("", "100/m").Windows[0], Used: 100, Reset: reset}
	err := ratelimit.Refusal(w, 1500*time.Millisecond)
	var e *apierror.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 429, e.Status)
	assert.Equal(t, "2", e.Header.Get("Retry-After"), "rounded up to whole seconds")
	assert.Equal(t, ratelimit.RefusalDetails{Window: "100/m", Limit: 100, Remaining: 0, Reset: reset.Unix() + 1}, e.Details)
}
