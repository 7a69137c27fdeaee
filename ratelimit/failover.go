package ratelimit

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// FailureMode says what a [Failover] does while its primary limiter
// (Redis) is failing.
type FailureMode int

// Failure modes.
const (
	// Degrade decides with the fallback limiter (in memory, per instance)
	// until the primary is back: limits still hold on each instance. The
	// default.
	Degrade FailureMode = iota
	// FailOpen admits every request while the primary is down.
	FailOpen
	// FailClosed refuses every request with ErrUnavailable (a 503 from
	// the middleware) while the primary is down.
	FailClosed
)

// ErrUnavailable is returned by a FailClosed [Failover] while its primary
// is down.
var ErrUnavailable = errors.New("ratelimit: limiter unavailable")

// FailoverConfig holds the settings of [NewFailover].
type FailoverConfig struct {
	Mode FailureMode
	// Fallback decides in Degrade mode. Default: a new Memory limiter.
	Fallback Limiter
	// Cooldown is how long the primary is left alone after a failure
	// (counted from when the failure was seen, after any timeout) before
	// one request tries it again, so a dead or hung Redis costs one
	// timeout per cooldown rather than one per request. Give the Redis
	// client short timeouts (ReadTimeout, WriteTimeout: go-redis waits 3 s
	// by default): the request that meets a hung Redis waits that long.
	// Default: 1 s.
	Cooldown time.Duration
	// Logger receives a line when the primary fails and when it is back.
	// Default: silent.
	Logger *slog.Logger
	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// Failover wraps a primary limiter (Redis) with a failure mode: never a
// 500 storm when the primary is unreachable, always logged and counted,
// and back on the primary by itself once a probe after Cooldown succeeds.
type Failover struct {
	primary  Limiter
	cfg      FailoverConfig
	log      *slog.Logger
	downTill atomic.Int64 // unix nanoseconds; 0 while healthy
	failures atomic.Int64
	degraded atomic.Int64
}

var _ Limiter = (*Failover)(nil)

// NewFailover wraps primary.
func NewFailover(primary Limiter, cfg FailoverConfig) *Failover {
	if cfg.Fallback == nil {
		cfg.Fallback = NewMemory(MemoryConfig{Now: cfg.Now})
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Failover{primary: primary, cfg: cfg, log: cfg.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Failures returns how many primary calls have failed.
func (f *Failover) Failures() int64 { return f.failures.Load() }

// DegradedDecisions returns how many decisions the failure mode made.
func (f *Failover) DegradedDecisions() int64 { return f.degraded.Load() }

// Allow implements [Limiter].
func (f *Failover) Allow(ctx context.Context, key string, p Policy, cost int64) (Result, error) {
	till := f.downTill.Load()
	probe := till == 0
	if !probe && f.cfg.Now().UnixNano() >= till {
		// The cooldown is over: one request tries the primary again, and
		// the others keep to the failure mode until it has answered, so
		// that a primary that hangs holds up one request per cooldown, not
		// every request that arrives while the probe waits.
		probe = f.downTill.CompareAndSwap(till, f.cfg.Now().Add(f.cfg.Cooldown).UnixNano())
	}
	if probe {
		r, err := f.primary.Allow(ctx, key, p, cost)
		if err == nil {
			if till != 0 && f.downTill.Swap(0) != 0 {
				f.log.Info("rate limiter primary is back")
			}
			return r, nil
		}
		if ctx.Err() != nil {
			return Result{}, err // the caller gave up: not the primary's fault
		}
		f.failures.Add(1)
		// The cooldown counts from the failure, not from the call: a
		// primary that failed by timing out took the timeout first.
		if f.downTill.Swap(f.cfg.Now().Add(f.cfg.Cooldown).UnixNano()) == 0 {
			f.log.Error("rate limiter primary failed; using the failure mode", "mode", f.cfg.Mode, "err", err)
		}
	}
	f.degraded.Add(1)
	switch f.cfg.Mode {
	case FailOpen:
		// Nothing was counted, so there is nothing true to report.
		return Result{Allowed: true, Degraded: true, Cost: cost}, nil
	case FailClosed:
		return Result{}, ErrUnavailable
	default:
		r, err := f.cfg.Fallback.Allow(ctx, key, p, cost)
		r.Degraded = true
		return r, err
	}
}
