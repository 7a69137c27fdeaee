package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-go/gatehouse/apikey"
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
	s, done := exampleStore(ctx) // opened and migrated as in Example
	defer done()
	if _, err := s.Querier(ctx).ExecContext(ctx, `CREATE TABLE notes (org TEXT, body TEXT)`); err != nil {
		panic(err)
	}
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "acme", Name: "Acme Ltd", CreatedAt: time.Now()}
	err := s.InTx(ctx, func(ctx context.Context) error {
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

// Every instance's API-key manager and OAuth provider hears the others'
// revocations through the store's Invalidator, and drops its cached copy
// at once instead of trusting it for CacheTTL. On PostgreSQL the
// instances are processes on other machines; here, on SQLite, two
// managers in one process stand for them.
func ExampleStore_Invalidator() {
	ctx := context.Background()
	s, done := exampleStore(ctx) // opened and migrated as in Example
	defer done()
	cfg := apikey.Config{CacheTTL: time.Hour, Invalidator: s.Invalidator()} // oauth.Config has the same field
	here, _ := apikey.New(s, cfg)
	defer here.Close(ctx)
	there, _ := apikey.New(s, cfg)
	defer there.Close(ctx)

	secret, k, _ := here.Create(ctx, apikey.CreateParams{OrganisationID: "org", Name: "CI", Scopes: []string{"bookings:read"}})
	_, err := there.Verify(ctx, secret.Reveal(), "192.0.2.1")
	fmt.Println("before:", err == nil)
	_, _ = here.Revoke(ctx, k.ID)
	_, err = there.Verify(ctx, secret.Reveal(), "192.0.2.1")
	fmt.Println("after the revocation elsewhere:", err)
	// Output:
	// before: true
	// after the revocation elsewhere: apikey: key refused: REVOKED
}

// exampleStore opens and migrates a SQLite store in a temporary
// directory, as Example does; done closes it and removes the directory.
func exampleStore(ctx context.Context) (s *sqlstore.Store, done func()) {
	dir, err := os.MkdirTemp("", "gatehouse")
	if err != nil {
		panic(err)
	}
	if s, err = sqlstore.Open(ctx, "sqlite:"+filepath.Join(dir, "app.db"), sqlstore.Config{}); err != nil {
		panic(err)
	}
	if err := s.Migrate(ctx); err != nil {
		panic(err)
	}
	return s, func() { _ = s.Close(); _ = os.RemoveAll(dir) }
}
