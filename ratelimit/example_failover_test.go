package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// Several instances share their counters in Redis; while Redis cannot be
// reached, the Failover decides how requests fare. Here no Redis listens
// at the address, so the Degrade mode counts in memory, per instance.
func ExampleNewFailover() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer client.Close()
	primary, err := ratelimit.NewRedis(client, ratelimit.RedisConfig{})
	if err != nil {
		panic(err)
	}
	limiter := ratelimit.NewFailover(primary, ratelimit.FailoverConfig{Mode: ratelimit.Degrade}) // or FailOpen, FailClosed (503)
	rl, err := ratelimit.New(limiter, ratelimit.Config{})                                        // Standard: 1000/h + 100/m
	if err != nil {
		panic(err)
	}
	api := rl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "[]") }))

	for range 2 {
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		req = req.WithContext(gatehouse.NewContext(req.Context(), &gatehouse.Principal{KeyID: "key_123"}))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("X-RateLimit-Limit"), rec.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// 200 100 99
	// 200 100 98
}
