package ratelimit_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(testenv.Redis(t))
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newRedisLimiter(t testing.TB, c redis.Scripter) (*ratelimit.Redis, string) {
	t.Helper()
	prefix := testenv.Name("rltest:") + ":"
	l, err := ratelimit.NewRedis(c, ratelimit.RedisConfig{Prefix: prefix})
	require.NoError(t, err)
	return l, prefix
}

// waitForFreshMinute avoids starting a minute-window test in the last
// seconds of a minute, where the window would reset under it.
func waitForFreshMinute(t *testing.T) {
	if s := time.Now().Second(); s > 50 {
		time.Sleep(time.Duration(61-s) * time.Second)
	}
}

func TestRedisWindows(t *testing.T) {
	c := redisClient(t)
	l, prefix := newRedisLimiter(t, c)
	waitForFreshMinute(t)
	ctx := t.Context()
	p := ratelimit.MustPolicy("", "1000/h,3/m")
	for i := range 3 {
		r, err := l.Allow(ctx, "key_a", p, 1)
		require.NoError(t, err)
		require.True(t, r.Allowed, "request %d", i)
		assert.EqualValues(t, i+1, r.Windows[1].Used)
	}
	r, err := l.Allow(ctx, "key_a", p, 1)
	require.NoError(t, err)
	assert.False(t, r.Allowed)
	assert.EqualValues(t, 3, r.Windows[0].Used, "refused: the hour window consumed nothing")
	assert.Positive(t, r.RetryAfter)
	assert.LessOrEqual(t, r.RetryAfter, time.Minute)

	keys, err := c.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 2)
	for _, k := range keys {
		assert.True(t, strings.HasPrefix(k, prefix+"{key_a}:"), "hash tag keeps a principal in one slot: %s", k)
		ttl, err := c.PTTL(ctx, k).Result()
		require.NoError(t, err)
		assert.Positive(t, ttl, "every key expires with its window: %s", k)
		assert.LessOrEqual(t, ttl, time.Hour)
	}

	// Another key is independent.
	r, err = l.Allow(ctx, "key_b", p, 1)
	require.NoError(t, err)
	assert.True(t, r.Allowed)
	_, err = l.Allow(ctx, "x", ratelimit.Policy{}, 1)
	assert.Error(t, err)
}

// TestRedisDistributedExactness runs two HTTP servers, each with its own
// limiter and Redis client, against one Redis, and 50 concurrent clients
// on one key with a limit of 500 a minute: exactly 500 are admitted.
func TestRedisDistributedExactness(t *testing.T) {
	prefix := testenv.Name("rldist:") + ":"
	pol := ratelimit.MustPolicy("", "500/m")
	var servers []*httptest.Server
	for range 2 {
		c := redisClient(t)
		l, err := ratelimit.NewRedis(c, ratelimit.RedisConfig{Prefix: prefix})
		require.NoError(t, err)
		mw, err := ratelimit.New(l, ratelimit.Config{Default: &pol})
		require.NoError(t, err)
		h := mw.Handler(ok)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), &gatehouse.Principal{KeyID: "shared"})))
		}))
		defer srv.Close()
		servers = append(servers, srv)
	}
	waitForFreshMinute(t)
	var admitted, refused, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range 50 {
		srv := servers[i%2]
		wg.Go(func() {
			for range 16 {
				res, err := client.Get(srv.URL)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				switch res.StatusCode {
				case 200:
					admitted.Add(1)
				case 429:
					refused.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("two servers, 50 clients, 800 requests: %d admitted, %d refused, %d failed", admitted.Load(), refused.Load(), failed.Load())
	assert.EqualValues(t, 500, admitted.Load())
	assert.EqualValues(t, 300, refused.Load())
	assert.Zero(t, failed.Load())
}

// proxy forwards TCP to Redis until cut, so a test can stop Redis traffic
// and bring it back without touching the shared server.
type proxy struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.down.Load() {
				_ = c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
	return p
}

func (p *proxy) cut() {
	p.down.Store(true)
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
}

func TestRedisOutageAndRecovery(t *testing.T) {
	opt, err := redis.ParseURL(testenv.Redis(t))
	require.NoError(t, err)
	waitForFreshMinute(t)
	pol := ratelimit.MustPolicy("", "3/m")
	for _, mode := range []ratelimit.FailureMode{ratelimit.Degrade, ratelimit.FailOpen, ratelimit.FailClosed} {
		px := newProxy(t, opt.Addr)
		c := redis.NewClient(&redis.Options{Addr: px.ln.Addr().String(), DB: opt.DB, DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, MaxRetries: -1})
		defer c.Close()
		l, _ := newRedisLimiter(t, c)
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		now := func() time.Time { return time.Unix(0, clock.Load()) }
		f := ratelimit.NewFailover(l, ratelimit.FailoverConfig{Mode: mode, Cooldown: time.Second, Now: now})
		mw, err := ratelimit.New(f, ratelimit.Config{Default: &pol})
		require.NoError(t, err)
		h := mw.Handler(ok)
		p := &gatehouse.Principal{KeyID: "outage"}

		rec := serve(h, p, nil)
		require.Equal(t, 200, rec.Code, "healthy")
		px.cut()
		var codes []int
		for range 4 {
			codes = append(codes, serve(h, p, nil).Code)
		}
		switch mode {
		case ratelimit.Degrade:
			assert.Equal(t, []int{200, 200, 200, 429}, codes, "memory fallback enforces the limit per instance")
		case ratelimit.FailOpen:
			assert.Equal(t, []int{200, 200, 200, 200}, codes)
		case ratelimit.FailClosed:
			assert.Equal(t, []int{503, 503, 503, 503}, codes)
		}
		assert.EqualValues(t, 1, f.Failures())

		// Redis comes back: after the cooldown the limiter uses it again,
		// and its count (1) is what it was before the outage.
		px.down.Store(false)
		clock.Add(int64(2 * time.Second))
		rec = serve(h, p, nil)
		assert.Equal(t, 200, rec.Code, "mode %d: recovered", mode)
		assert.Equal(t, "1", rec.Header().Get("X-RateLimit-Remaining"), "mode %d: decided by Redis again", mode)
	}
}

func BenchmarkRedis(b *testing.B) {
	c := redisClient(b)
	l, _ := newRedisLimiter(b, c)
	p := ratelimit.MustPolicy("", "1000000000/h,100000000/m")
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(25) // 50 goroutines on 2 cores, as redis-benchmark -c 50
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := l.Allow(ctx, "bench:"+itoa(i%1000), p, 1); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// TestRedisMatchesReference drives random keys and costs through the Redis
// limiter and checks every decision against the brute-force model. Redis
// decides on its own clock, so the model identifies each window by the
// reset time Redis reports for it; within a window it admits a request
// exactly when every window has room, and a refusal consumes nothing.
func TestRedisMatchesReference(t *testing.T) {
	c := redisClient(t)
	l, _ := newRedisLimiter(t, c)
	p := ratelimit.MustPolicy("", "40/h,9/m")
	ctx := t.Context()
	type win struct {
		key   string
		i     int
		reset int64
	}
	used := map[win]int64{}
	rng := newRand(7)
	for step := range 300 {
		key := []string{"a", "b", "c"}[rng.IntN(3)]
		cost := int64(1 + rng.IntN(3))
		r, err := l.Allow(ctx, key, p, cost)
		require.NoError(t, err)
		want := true
		for i, w := range p.Windows {
			if used[win{key, i, r.Windows[i].Reset.UnixMilli()}]+cost > w.Limit {
				want = false
			}
		}
		require.Equal(t, want, r.Allowed, "step %d key %s cost %d", step, key, cost)
		for i := range p.Windows {
			k := win{key, i, r.Windows[i].Reset.UnixMilli()}
			if want {
				used[k] += cost
			}
			require.Equal(t, used[k], r.Windows[i].Used, "step %d window %d", step, i)
			require.LessOrEqual(t, used[k], p.Windows[i].Limit, "no window ever admits more than its limit")
		}
	}
}
