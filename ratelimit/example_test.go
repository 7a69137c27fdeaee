package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

func Example() {
	limiter := ratelimit.NewMemory(ratelimit.MemoryConfig{}) // or NewFailover(NewRedis(…), …)
	burst := ratelimit.MustPolicy("tiny", "1000/h,2/m")
	rl, err := ratelimit.New(limiter, ratelimit.Config{Default: &burst})
	if err != nil {
		panic(err)
	}
	api := rl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "[]") }))

	for range 3 {
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		// The authenticator chain normally puts the principal there.
		req = req.WithContext(gatehouse.NewContext(req.Context(), &gatehouse.Principal{KeyID: "key_123"}))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("X-RateLimit-Limit"), rec.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// 200 2 1
	// 200 2 0
	// 429 2 0
}
