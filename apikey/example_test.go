package apikey_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// Create a key with one scope, then protect a handler with it.
func Example() {
	ctx := context.Background()
	keys, err := apikey.New(memory.New(), apikey.Config{Catalog: scope.DefaultCatalog()})
	if err != nil {
		panic(err)
	}
	defer keys.Close(ctx)

	secret, rec, err := keys.Create(ctx, apikey.CreateParams{
		OrganisationID: "acme", Name: "CI", Scopes: []string{scope.BookingsRead}, Environment: gatehouse.Test,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("shown once:", secret.Reveal()[:10]+"…", "stored:", rec.Display[:len("gate_test_…")])

	chain, _ := gatehouse.NewChain(gatehouse.ChainConfig{}, keys)
	bookings := chain.Handler(scope.MustRequire(scope.DefaultCatalog(), scope.BookingsRead).Handler(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := gatehouse.FromContext(r.Context())
			fmt.Fprintf(w, "bookings of %s (%s data)", p.Organisation, p.Environment)
		})))

	req := httptest.NewRequest("GET", "/v1/bookings", nil)
	req.Header.Set("Authorization", "Bearer "+secret.Reveal())
	w := httptest.NewRecorder()
	bookings.ServeHTTP(w, req)
	fmt.Println(w.Code, w.Body.String())
	// Output:
	// shown once: gate_test_… stored: gate_test_…
	// 200 bookings of acme (test data)
}

// A key was found in a public repository: find it by its text, see whose
// it is, and revoke it.
func ExampleManager_Find() {
	ctx := context.Background()
	keys, err := apikey.New(memory.New(), apikey.Config{})
	if err != nil {
		panic(err)
	}
	defer keys.Close(ctx)
	leaked, _, _ := keys.Create(ctx, apikey.CreateParams{OrganisationID: "acme", Name: "deploy bot"})

	k, err := keys.Find(ctx, leaked.Reveal())
	if err != nil {
		panic(err)
	}
	fmt.Println("found:", k.Name, "of", k.OrganisationID)
	_, _ = keys.Revoke(ctx, k.ID)
	_, err = keys.Verify(ctx, leaked.Reveal(), "192.0.2.1")
	fmt.Println(err)
	// Output:
	// found: deploy bot of acme
	// apikey: key refused: REVOKED
}
