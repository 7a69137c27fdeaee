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
