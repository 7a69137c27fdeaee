package bench

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/sethvargo/go-limiter/memorystore"
	"github.com/ulule/limiter/v3"
	ulmemory "github.com/ulule/limiter/v3/drivers/store/memory"
	"golang.org/x/time/rate"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

var keys = func() []string {
	k := make([]string, 100_000)
	for i := range k {
		k[i] = "key:" + strconv.Itoa(i)
	}
	return k
}()

// parallel runs fn over the 100,000 keys from every core.
func parallel(b *testing.B, fn func(key string)) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			fn(keys[i%len(keys)])
			i += 7
		}
	})
}

// BenchmarkLimiterMemory: one decision per op, 100,000 distinct keys,
// limits high enough that every request is admitted.
func BenchmarkLimiterMemory(b *testing.B) {
	now := time.Now()
	b.Run("gatehouse-one-window", func(b *testing.B) {
		l := ratelimit.NewMemory(ratelimit.MemoryConfig{})
		p := ratelimit.MustPolicy("", "1000000000/h")
		parallel(b, func(k string) { l.AllowAt(k, p, 1, now) })
	})
	b.Run("gatehouse-two-windows", func(b *testing.B) {
		l := ratelimit.NewMemory(ratelimit.MemoryConfig{})
		p := ratelimit.MustPolicy("", "1000000000/h,100000000/m")
		parallel(b, func(k string) { l.AllowAt(k, p, 1, now) })
	})
	b.Run("x-time-rate-syncmap", func(b *testing.B) {
		var m sync.Map
		parallel(b, func(k string) {
			v, ok := m.Load(k)
			if !ok {
				v, _ = m.LoadOrStore(k, rate.NewLimiter(rate.Limit(1e9/3600.0), 1e9))
			}
			v.(*rate.Limiter).AllowN(now, 1)
		})
	})
	b.Run("sethvargo-go-limiter", func(b *testing.B) {
		s, err := memorystore.New(&memorystore.Config{Tokens: 1e9, Interval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close(context.Background())
		ctx := context.Background()
		parallel(b, func(k string) { _, _, _, _, _ = s.Take(ctx, k) })
	})
	b.Run("ulule-limiter", func(b *testing.B) {
		l := limiter.New(ulmemory.NewStore(), limiter.Rate{Period: time.Hour, Limit: 1e9})
		ctx := context.Background()
		parallel(b, func(k string) { _, _ = l.Get(ctx, k) })
	})
}

// BenchmarkLimiterRedis: one decision per op on the local Redis, 50
// goroutines, 1,000 keys.
func BenchmarkLimiterRedis(b *testing.B) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", PoolSize: 64})
	defer c.Close()
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Skip("Redis not reachable on 127.0.0.1:6379")
	}
	ctx := context.Background()
	run := func(b *testing.B, fn func(k string)) {
		b.ReportAllocs()
		b.SetParallelism(25)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				fn(keys[i%1000])
				i++
			}
		})
	}
	b.Run("gatehouse-two-windows", func(b *testing.B) {
		l, _ := ratelimit.NewRedis(c, ratelimit.RedisConfig{Prefix: "bench:gh:"})
		p := ratelimit.MustPolicy("", "1000000000/h,100000000/m")
		run(b, func(k string) {
			if _, err := l.Allow(ctx, k, p, 1); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("gatehouse-one-window", func(b *testing.B) {
		l, _ := ratelimit.NewRedis(c, ratelimit.RedisConfig{Prefix: "bench:gh1:"})
		p := ratelimit.MustPolicy("", "1000000000/h")
		run(b, func(k string) {
			if _, err := l.Allow(ctx, k, p, 1); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("redis_rate-one-window", func(b *testing.B) {
		l := redis_rate.NewLimiter(c)
		lim := redis_rate.Limit{Rate: 1e9, Burst: 1e9, Period: time.Hour}
		run(b, func(k string) {
			if _, err := l.Allow(ctx, "bench:rr:"+k, lim); err != nil {
				b.Fatal(err)
			}
		})
	})
}
