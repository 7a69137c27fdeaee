package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxWindows is the most windows one policy may have.
const MaxWindows = 4

// Window is one limit: at most Limit units of cost in each Period.
// Windows are aligned to the Unix epoch: a 1-minute window runs from
// hh:mm:00 to hh:mm+1:00 UTC, an hour window from hh:00 to hh+1:00.
type Window struct {
	Limit  int64
	Period time.Duration
}

// String returns the compact form, "100/m".
func (w Window) String() string { return string(w.appendTo(nil)) }

// appendTo appends the compact form to b.
func (w Window) appendTo(b []byte) []byte {
	b = strconv.AppendInt(b, w.Limit, 10)
	b = append(b, '/')
	for _, u := range units {
		if w.Period == u.d {
			return append(b, u.short...)
		}
	}
	return append(b, w.Period.String()...)
}

// Policy is a set of windows checked together: a request is admitted only
// if every window has room for it, and then counts in every window.
type Policy struct {
	// Name identifies the policy in headers and logs ("standard").
	Name    string
	Windows []Window
}

// String returns the compact form, "1000/h,100/m".
func (p Policy) String() string {
	parts := make([]string, len(p.Windows))
	for i, w := range p.Windows {
		parts[i] = w.String()
	}
	return strings.Join(parts, ",")
}

var units = []struct {
	short string
	long  []string
	d     time.Duration
}{
	{"s", []string{"sec", "second"}, time.Second},
	{"m", []string{"min", "minute"}, time.Minute},
	{"h", []string{"hour"}, time.Hour},
	{"d", []string{"day"}, 24 * time.Hour},
}

// ErrPolicy is wrapped by every error of [ParsePolicy].
var ErrPolicy = errors.New("ratelimit: invalid policy")

// ParsePolicy parses the compact form of a policy: comma-separated windows
// LIMIT/UNIT, where UNIT is s, m, h or d (or second, minute, hour, day; or
// a Go duration such as 10s or 15m). Example: "1000/h,100/m". Limits are
// whole numbers from 1 to 10^12; periods from 1 s to 31 days; at most
// MaxWindows windows, no period twice.
func ParsePolicy(s string) (Policy, error) {
	if strings.TrimSpace(s) == "" {
		return Policy{}, fmt.Errorf("%w: empty", ErrPolicy)
	}
	if len(s) > 200 {
		return Policy{}, fmt.Errorf("%w: longer than 200 characters", ErrPolicy)
	}
	var p Policy
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lim, unit, ok := strings.Cut(part, "/")
		if !ok {
			return Policy{}, fmt.Errorf("%w: %q: want LIMIT/PERIOD such as 100/m", ErrPolicy, part)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(lim), 10, 64)
		if err != nil || n < 1 || n > 1e12 {
			return Policy{}, fmt.Errorf("%w: %q: the limit must be a whole number from 1 to 10^12", ErrPolicy, part)
		}
		d, err := parsePeriod(strings.TrimSpace(unit))
		if err != nil {
			return Policy{}, fmt.Errorf("%w: %q: %v", ErrPolicy, part, err)
		}
		for _, w := range p.Windows {
			if w.Period == d {
				return Policy{}, fmt.Errorf("%w: the period %s appears twice", ErrPolicy, d)
			}
		}
		if len(p.Windows) == MaxWindows {
			return Policy{}, fmt.Errorf("%w: at most %d windows", ErrPolicy, MaxWindows)
		}
		p.Windows = append(p.Windows, Window{Limit: n, Period: d})
	}
	p.Name = p.String()
	return p, nil
}

// MustPolicy is like ParsePolicy but panics; for policies written as
// constants.
func MustPolicy(name, s string) Policy {
	p, err := ParsePolicy(s)
	if err != nil {
		panic(err)
	}
	if name != "" {
		p.Name = name
	}
	return p
}

func parsePeriod(u string) (time.Duration, error) {
	lower := strings.ToLower(u)
	for _, x := range units {
		if lower == x.short {
			return x.d, nil
		}
		for _, l := range x.long {
			if lower == l || lower == l+"s" {
				return x.d, nil
			}
		}
	}
	d, err := time.ParseDuration(u)
	if err != nil {
		return 0, errors.New("the period must be s, m, h, d or a duration such as 10s")
	}
	if d < time.Second || d > 31*24*time.Hour || d%time.Second != 0 {
		return 0, errors.New("the period must be whole seconds from 1s to 31 days")
	}
	return d, nil
}

// WindowResult is the state of one window after a decision.
type WindowResult struct {
	Window Window
	// Used is the cost counted in the current window, including this
	// request when it was admitted.
	Used int64
	// Reset is when the current window ends and Used returns to zero.
	Reset time.Time
}

// Remaining is the cost the window can still admit before Reset.
func (w WindowResult) Remaining() int64 { return max(0, w.Window.Limit-w.Used) }

// Result is a decision.
type Result struct {
	Allowed bool
	// Windows has one entry per window of the policy, in policy order.
	Windows [MaxWindows]WindowResult
	// N is how many entries of Windows are used; zero when no backend
	// decided (a fail-open answer).
	N int
	// Cost is what the request counted (or would have).
	Cost int64
	// RetryAfter is, for a refused request, how long until every window
	// that lacked room has reset; zero when allowed.
	RetryAfter time.Duration
	// Degraded is set when the decision was not made by the configured
	// backend (it failed and the failure mode answered instead).
	Degraded bool
	// At is when the decision was made, on the limiter's clock (Redis's
	// own for the Redis limiter): the time the Reset times are relative
	// to.
	At time.Time
}

// Binding returns the window that will run out first: the one with the
// least remaining (on a tie, the one that resets last). Its figures go in
// the X-RateLimit-* headers.
func (r *Result) Binding() WindowResult {
	if r.N == 0 {
		return WindowResult{}
	}
	b := r.Windows[0]
	for _, w := range r.Windows[1:r.N] {
		if w.Remaining() < b.Remaining() || (w.Remaining() == b.Remaining() && w.Reset.After(b.Reset)) {
			b = w
		}
	}
	return b
}

// usable reports whether a policy has 1 to MaxWindows windows, as every
// limiter needs (a Policy built by hand may have none).
func (p Policy) usable() bool { return len(p.Windows) > 0 && len(p.Windows) <= MaxWindows }

// Exhausted returns, among the windows with nothing remaining, the one
// that resets last: a key refused for it may try again at its Reset. ok
// is false when every window still has room. A decision with cost 0
// counts nothing, so Exhausted on its result tells whether a key has
// spent its budget — the check before an attempt whose failures alone
// are counted (sign-ins, refused credentials).
func (r *Result) Exhausted() (w WindowResult, ok bool) {
	for _, c := range r.Windows[:r.N] {
		if c.Remaining() == 0 && (!ok || c.Reset.After(w.Reset)) {
			w, ok = c, true
		}
	}
	return w, ok
}

// Limiter decides whether a request of the given cost by key is admitted
// under policy. Implementations are safe for concurrent use and make the
// decision for every window of the policy atomically: all or nothing.
type Limiter interface {
	Allow(ctx context.Context, key string, p Policy, cost int64) (Result, error)
}

// decide applies one decision to the counts of every window (used is the
// count already in each current window), all or nothing, and fills r.
// resets[i] is when window i ends.
func decide(p Policy, used []int64, resets []time.Time, now time.Time, cost int64, r *Result) {
	r.N = len(p.Windows)
	r.Cost = cost
	r.At = now
	r.Allowed = true
	for i, w := range p.Windows {
		if used[i]+cost > w.Limit {
			r.Allowed = false
			if wait := resets[i].Sub(now); wait > r.RetryAfter {
				r.RetryAfter = wait
			}
		}
	}
	for i, w := range p.Windows {
		u := used[i]
		if r.Allowed {
			u += cost
		}
		r.Windows[i] = WindowResult{Window: w, Used: u, Reset: resets[i]}
	}
	if r.Allowed {
		r.RetryAfter = 0
	}
}

// windowBounds returns the index of the window of length period that
// contains now (Unix nanoseconds), and when it ends.
func windowBounds(nowNanos int64, period time.Duration) (idx int64, end time.Time) {
	idx = nowNanos / int64(period)
	return idx, time.Unix(0, (idx+1)*int64(period))
}
