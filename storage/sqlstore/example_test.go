package sqlstore_test

import (
	"context"
	"database/sql"
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

// An application's own table beside the store's: Querier runs its SQL in
// the transaction InTx carries, so the application's row and the store's
// writes commit together, and on SQLite through prepared statements.
func ExampleStore_Querier() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gatehouse")
	defer os.RemoveAll(dir)
	s, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), sqlstore.Config{})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		panic(err)
	}
	if _, err := s.Querier(ctx).ExecContext(ctx, `CREATE TABLE notes (org TEXT, body TEXT)`); err != nil {
		panic(err)
	}
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "acme", Name: "Acme Ltd", CreatedAt: time.Now()}
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateOrganisation(ctx, org); err != nil {
			return err
		}
		_, err := s.Querier(ctx).ExecContext(ctx, `INSERT INTO notes (org, body) VALUES (?, ?)`, org.ID, "welcome")
		return err
	})
	if err != nil {
		panic(err)
	}
	var body string
	err = s.Querier(ctx).QueryRowContext(ctx, `SELECT body FROM notes WHERE org = ?`, org.ID).Scan(&body)
	fmt.Println(body, err)
	// Output: welcome <nil>
}

// A *sql.DB of the application's own, shared with the store: open it on
// PostgresConnector, so connections that cancelled queries closed leave
// the pool. (Not run: it needs a PostgreSQL server.)
func ExamplePostgresConnector() {
	ctx := context.Background()
	connector, err := sqlstore.PostgresConnector("postgres://app@db.internal/app")
	if err != nil {
		panic(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	db.SetMaxOpenConns(20)
	store, err := sqlstore.New(db, sqlstore.Postgres, sqlstore.Config{TablePrefix: "auth_"})
	if err != nil {
		panic(err)
	}
	if err := store.Migrate(ctx); err != nil {
		panic(err)
	}
}
