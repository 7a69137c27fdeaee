package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
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

func ExampleFailureBudget() {
	two := ratelimit.MustPolicy("auth-failures", "2/h")
	budget, err := ratelimit.NewFailureBudget(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.FailureBudgetConfig{Policy: &two})
	if err != nil {
		panic(err)
	}
	keys := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		return nil, apierror.InvalidToken("API key not found") // every key is unknown here
	})
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{
		OnRefused: func(r *http.Request, _ error) { budget.Spend(r) }, // a credential sent and refused
	}, keys)
	if err != nil {
		panic(err)
	}
	api := budget.Handler(chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "[]") })))

	for range 3 {
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		req.Header.Set("Authorization", "Bearer gate_live_guessed")
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 401
	// 401
	// 429
}

// A client checks its budget without spending it: mount StatusHandler
// beside the limited API, not behind it.
func ExampleMiddleware_StatusHandler() {
	burst := ratelimit.MustPolicy("tiny", "1000/h,2/m")
	rl, _ := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.Config{Default: &burst})
	mux := http.NewServeMux()
	mux.Handle("GET /v1/rate-limit", rl.StatusHandler())
	mux.Handle("/v1/", rl.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "[]") })))

	for _, path := range []string{"/v1/bookings", "/v1/rate-limit", "/v1/rate-limit"} {
		req := httptest.NewRequest("GET", path, nil)
		req = req.WithContext(gatehouse.NewContext(req.Context(), &gatehouse.Principal{KeyID: "key_123"}))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Println(path, rec.Code, rec.Header().Get("X-RateLimit-Remaining"))
	}
	// Output:
	// /v1/bookings 200 1
	// /v1/rate-limit 200 1
	// /v1/rate-limit 200 1
}
