package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// The in-memory store implements every storage interface: for tests and
// single-process tools.
func Example() {
	ctx := context.Background()
	s := memory.New()
	_ = s.CreateOrganisation(ctx, &storage.Organisation{ID: "org-1", DomainPrefix: "acme", Name: "Acme", CreatedAt: time.Now()})
	o, _ := s.GetOrganisationByPrefix(ctx, "acme")
	_, err := s.GetOrganisation(ctx, "org-2")
	fmt.Println(o.Name, errors.Is(err, storage.ErrNotFound))
	// Output: Acme true
}
