package ratelimit_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// stepClock is a clock the test moves.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// hangingLimiter is a primary that fails after taking its time (a Redis
// that does not answer until the client's timeout), or, while hold is
// set, waits for it to be closed; it counts the calls it gets.
type hangingLimiter struct {
	clock *stepClock
	took  time.Duration
	hold  chan struct{}
	calls atomic.Int64
}

func (h *hangingLimiter) Allow(context.Context, string, ratelimit.Policy, int64) (ratelimit.Result, error) {
	h.calls.Add(1)
	if h.hold != nil {
		<-h.hold
	}
	h.clock.Add(h.took)
	return ratelimit.Result{}, errors.New("i/o timeout")
}

// TestFailoverCooldownCountsFromTheFailure: a primary that fails by
// timing out is left alone for the cooldown after it failed. (It was
// counted from the start of the call, so when the timeout was longer than
// the cooldown every request tried the hanging primary again.)
func TestFailoverCooldownCountsFromTheFailure(t *testing.T) {
	t.Parallel()
	clock := &stepClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	primary := &hangingLimiter{clock: clock, took: 3 * time.Second}
	f := ratelimit.NewFailover(primary, ratelimit.FailoverConfig{Cooldown: time.Second, Now: clock.Now})
	p := ratelimit.MustPolicy("", "10/m")
	for i := range 5 {
		r, err := f.Allow(t.Context(), "k", p, 1)
		require.NoError(t, err)
		assert.True(t, r.Degraded, "request %d", i)
	}
	assert.EqualValues(t, 1, primary.calls.Load(), "only the first request waited on the hanging primary")
	clock.Add(time.Second)
	_, _ = f.Allow(t.Context(), "k", p, 1)
	assert.EqualValues(t, 2, primary.calls.Load(), "after the cooldown one request tries it again")
}

// TestFailoverProbesWithOneRequest: when the cooldown is over, one
// request tries the primary again; the others arriving while it waits
// keep to the failure mode instead of waiting on the primary too.
func TestFailoverProbesWithOneRequest(t *testing.T) {
	t.Parallel()
	clock := &stepClock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	primary := &hangingLimiter{clock: clock}
	f := ratelimit.NewFailover(primary, ratelimit.FailoverConfig{Cooldown: time.Second, Now: clock.Now})
	p := ratelimit.MustPolicy("", "1000/m")
	_, _ = f.Allow(t.Context(), "k", p, 1) // the failure that starts the cooldown
	clock.Add(2 * time.Second)
	primary.hold = make(chan struct{})
	var done sync.WaitGroup
	var degraded atomic.Int64
	for range 20 {
		done.Go(func() {
			if r, err := f.Allow(t.Context(), "k", p, 1); err == nil && r.Degraded {
				degraded.Add(1)
			}
		})
	}
	require.Eventually(t, func() bool { return degraded.Load() == 19 }, 30*time.Second, time.Millisecond,
		"19 of 20 requests decided without the primary while one probed it")
	assert.EqualValues(t, 2, primary.calls.Load(), "one probe")
	close(primary.hold)
	done.Wait()
	assert.EqualValues(t, 20, degraded.Load(), "the probe failed too: degraded")
}

// TestFailoverOverAHangingRedis: a Redis that accepts connections and
// never answers (a hung server, a black-holed network) is met by one
// request, which waits out the client's timeout; the requests after it
// are decided by the fallback at once, through the real go-redis client.
func TestFailoverOverAHangingRedis(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	var mu sync.Mutex
	var received bytes.Buffer
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					mu.Lock()
					received.Write(buf[:n])
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	rc := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: 1500 * time.Millisecond, WriteTimeout: time.Second,
		MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rc.Close() })
	rl, err := ratelimit.NewRedis(rc, ratelimit.RedisConfig{})
	require.NoError(t, err)
	f := ratelimit.NewFailover(rl, ratelimit.FailoverConfig{Cooldown: time.Second})
	p := ratelimit.MustPolicy("", "3/m")
	var allowed []bool
	for range 5 {
		r, err := f.Allow(t.Context(), "hung", p, 1)
		require.NoError(t, err)
		assert.True(t, r.Degraded)
		allowed = append(allowed, r.Allowed)
	}
	assert.Equal(t, []bool{true, true, true, false, false}, allowed, "the fallback keeps the limit")
	mu.Lock()
	// Each request that reached Redis opened a connection with HELLO and
	// waited there (nothing answered it).
	got := bytes.ToUpper(received.Bytes())
	sent := bytes.Count(got, []byte("HELLO")) + bytes.Count(got, []byte("EVALSHA"))
	mu.Unlock()
	assert.Equal(t, 1, sent, "one request sent to the hanging Redis, not one per request")
}
