package apierror_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/apierror"
)

func Example() {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, r, apierror.InvalidParam("customer_id", "Customer ID must be a valid UUID"))
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/customers/not-a-uuid", nil))
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 400
	// {"error":{"code":"INVALID_REQUEST","message":"The request parameters are invalid","details":{"field":"customer_id","issue":"Customer ID must be a valid UUID"}}}
}

func ExampleDecoder() {
	type input struct {
		Name string `json:"name"`
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in input
		if err := apierror.DecodeJSON(w, r, &in); err != nil {
			apierror.Write(w, r, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	req := httptest.NewRequest("POST", "/v1/customers", strings.NewReader(`{"name":"Ada","id":"42"}`))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String())
	// Output:
	// 422
	// {"error":{"code":"UNPROCESSABLE_ENTITY","message":"The request contains invalid fields","details":{"field":"id","issue":"is not a field of this resource or may not be set","errors":[{"field":"id","issue":"is not a field of this resource or may not be set"}]}}}
}

func ExampleRequestID() {
	h := apierror.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The id is in the context for logs, and in every error envelope.
		fmt.Println("handler sees", apierror.RequestIDFromContext(r.Context()))
		apierror.Write(w, r, apierror.NotFound("booking"))
	}))
	req := httptest.NewRequest("GET", "/v1/bookings/42", nil)
	req.Header.Set("X-Request-Id", "req-7f3a") // a well-formed incoming id is kept
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Header().Get("X-Request-Id"))
	fmt.Print(rec.Body.String())
	// Output:
	// handler sees req-7f3a
	// req-7f3a
	// {"error":{"code":"NOT_FOUND","message":"The requested booking does not exist","request_id":"req-7f3a"}}
}

func ExampleRecoverer() {
	logs := slog.New(slog.DiscardHandler) // your logger: it receives the panic and its stack
	h := apierror.RequestID(apierror.Recoverer{Logger: logs}.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("nil map")
	})))
	req := httptest.NewRequest("GET", "/v1/bookings", nil)
	req.Header.Set("X-Request-Id", "req-9c01")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	fmt.Print(rec.Body.String()) // the panic value is logged, never sent
	// Output:
	// 500
	// {"error":{"code":"INTERNAL_ERROR","message":"Something went wrong on our side; it has been logged","request_id":"req-9c01"}}
}

func ExampleNegotiate() {
	h := apierror.Negotiate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", apierror.ContentTypeJSON)
		_, _ = w.Write([]byte("[]\n"))
	}))
	for _, accept := range []string{"application/json", "*/*", "text/html"} {
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(accept, rec.Code)
	}
	// Output:
	// application/json 200
	// */* 200
	// text/html 406
}

// A request that waits on a backend longer than its deadline is answered
// 503 with Retry-After instead of being held.
func ExampleDeadline() {
	hung := make(chan struct{}) // a database that never answers
	h := apierror.Deadline(50 * time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hung:
		case <-r.Context().Done():
			apierror.Write(w, r, fmt.Errorf("list bookings: %w", r.Context().Err()))
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/bookings", nil))
	fmt.Println(rec.Code, rec.Header().Get("Retry-After"))
	fmt.Print(rec.Body.String())
	// Output:
	// 503 1
	// {"error":{"code":"SERVICE_UNAVAILABLE","message":"The service is temporarily unavailable; retry shortly"}}
}
