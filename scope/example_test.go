package scope_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/scope"
)

func ExampleRequire() {
	catalog := scope.DefaultCatalog()
	guard := scope.MustRequire(catalog, scope.BookingsRead)
	list := guard.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "[]")
	}))

	for _, granted := range [][]string{{"bookings:write"}, {"customers:read"}} {
		req := httptest.NewRequest("GET", "/v1/bookings", nil)
		// The authenticator chain normally puts the principal there.
		req = req.WithContext(gatehouse.NewContext(req.Context(), &gatehouse.Principal{Scopes: granted}))
		rec := httptest.NewRecorder()
		list.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate") != "")
	}
	// Output:
	// 200 false
	// 403 true
}

func ExampleCatalog_Narrow() {
	catalog := scope.DefaultCatalog()
	requested, _ := scope.Parse("bookings:read payments:write")
	allowed, _ := scope.Parse("bookings:write customers:read")
	granted, refused := catalog.Narrow(requested, allowed)
	fmt.Println("granted:", granted)
	fmt.Println("refused:", refused)
	// Output:
	// granted: bookings:read
	// refused: payments:write
}
