package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// Open the embedded SQLite store (no cgo), migrate it, and use it. A
// postgres:// URL instead of "sqlite:PATH" opens PostgreSQL.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gatehouse")
	defer os.RemoveAll(dir)

	s, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "gatehouse.db"), sqlstore.Config{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil { // idempotent; safe from several instances
		panic(err)
	}

	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "acme", Name: "Acme Ltd", CreatedAt: time.Now()}
	if err := s.CreateOrganisation(ctx, org); err != nil {
		panic(err)
	}
	got, _ := s.GetOrganisationByPrefix(ctx, "ACME")
	fmt.Println(got.Name, s.Dialect() == sqlstore.SQLite)
	err = s.CreateOrganisation(ctx, &storage.Organisation{ID: storage.NewID(), DomainPrefix: "acme", Name: "Again", CreatedAt: time.Now()})
	fmt.Println("second acme:", errors.Is(err, storage.ErrConflict))
	// Output:
	// Acme Ltd true
	// second acme: true
}
