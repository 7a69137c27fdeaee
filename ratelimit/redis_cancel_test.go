package ratelimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestRedisCancellationBurstsKeepAnswersStraight: when many decisions are
// cancelled at once mid-flight (clients closing their connections), a
// decision whose context is live must get its own answer: neither an
// error nor a reply meant for a cancelled command that was left unread on
// a pooled connection. Live decisions count cost 1 on fresh keys, so they
// must see Used 1; cancelled ones count 2–9, so a stray reply shows.
func TestRedisCancellationBurstsKeepAnswersStraight(t *testing.T) {
	t.Parallel()
	opt, err := redis.ParseURL(testenv.Redis(t))
	require.NoError(t, err)
	opt.PoolSize = 4 // 32 decisions share 4 connections
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	l, prefix := newRedisLimiter(t, c)
	t.Cleanup(func() { // the keys would expire with their hour window; drop them now
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	pol := ratelimit.MustPolicy("", "100000/h,100000/m")
	ctx := t.Context()

	var live, cancelled, failed, wrong atomic.Int64
	var first atomic.Value
	stop := time.Now().Add(8 * time.Second) // bounds the run; nothing is asserted on time
	for wave := 0; wave < 400 && time.Now().Before(stop); wave++ {
		burst, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for i := range 32 {
			wg.Go(func() {
				if i%4 == 0 { // live
					r, err := l.Allow(ctx, fmt.Sprintf("live-%d-%d", wave, i), pol, 1)
					switch {
					case err != nil:
						failed.Add(1)
						first.CompareAndSwap(nil, err.Error())
					case !r.Allowed || r.N != 2 || r.Windows[0].Used != 1 || r.Windows[1].Used != 1:
						wrong.Add(1)
						first.CompareAndSwap(nil, fmt.Sprintf("%+v", r))
					default:
						live.Add(1)
					}
					return
				}
				if _, err := l.Allow(burst, fmt.Sprintf("gone-%d-%d", wave, i), pol, int64(2+rand.IntN(8))); err != nil {
					cancelled.Add(1)
				}
			})
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		cancel()
		wg.Wait()
	}
	t.Logf("live decisions %d, failed %d, wrong %d; cancelled %d", live.Load(), failed.Load(), wrong.Load(), cancelled.Load())
	require.Positive(t, cancelled.Load(), "the bursts cancelled decisions in flight")
	assert.Zero(t, failed.Load()+wrong.Load(), "live decisions failed or got another's answer, the first: %v", first.Load())
}
