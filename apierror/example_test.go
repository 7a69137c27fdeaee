package apierror_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

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
