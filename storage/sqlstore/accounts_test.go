package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/storage/storagetest"
)

// usersOnAccounts is the adapter an application writes when its users
// already live in a table of its own, older than Gatehouse, with its own
// names and types (here: accounts, times as RFC 3339 text): it serves
// Gatehouse's storage.Users from that table and everything else from the
// store it embeds. It runs its SQL through Querier, so that its
// statements join the transaction InTx carries, and returns its errors
// through sqlstore.Wrap, so that a duplicate is storage.ErrConflict, no
// row storage.ErrNotFound and an outage storage.ErrUnavailable.
type usersOnAccounts struct {
	*sqlstore.Store
	table string
}

// accountsDDL is the application's table; the UNIQUE constraint is what
// makes emails unique per organisation, case-insensitively.
const accountsDDL = `CREATE TABLE %s (
	account_id  TEXT PRIMARY KEY,
	tenant      TEXT NOT NULL,
	email       TEXT NOT NULL,
	email_lower TEXT NOT NULL,
	pw          TEXT NOT NULL,
	given_name  TEXT NOT NULL,
	family_name TEXT NOT NULL,
	joined      TEXT NOT NULL,
	modified    TEXT NOT NULL,
	UNIQUE (tenant, email_lower))`

func newUsersOnAccounts(ctx context.Context, s *sqlstore.Store) (*usersOnAccounts, error) {
	a := &usersOnAccounts{Store: s, table: s.TablePrefix() + "accounts"}
	_, err := s.Querier(ctx).ExecContext(ctx, fmt.Sprintf(accountsDDL, a.table))
	return a, err
}

// q names the table and, on PostgreSQL, numbers the placeholders.
func (a *usersOnAccounts) q(query string) string {
	return a.Dialect().Rebind(strings.ReplaceAll(query, "{accounts}", a.table))
}

const accountCols = `account_id, tenant, email, pw, given_name, family_name, joined, modified`

func scanAccount(row *sql.Row) (*storage.User, error) {
	var u storage.User
	var joined, modified string
	if err := row.Scan(&u.ID, &u.OrganisationID, &u.Email, &u.PasswordHash, &u.FirstName, &u.LastName, &joined, &modified); err != nil {
		return nil, err
	}
	var err1, err2 error
	u.CreatedAt, err1 = time.Parse(time.RFC3339Nano, joined)
	u.UpdatedAt, err2 = time.Parse(time.RFC3339Nano, modified)
	return &u, errors.Join(err1, err2)
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func (a *usersOnAccounts) CreateUser(ctx context.Context, u *storage.User) error {
	_, err := a.Querier(ctx).ExecContext(ctx, a.q(`INSERT INTO {accounts} (`+accountCols+`, email_lower) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		u.ID, u.OrganisationID, u.Email, u.PasswordHash, u.FirstName, u.LastName, stamp(u.CreatedAt), stamp(u.UpdatedAt), storage.NormalizeEmail(u.Email))
	return sqlstore.Wrap("create account", err)
}

func (a *usersOnAccounts) GetUser(ctx context.Context, id string) (*storage.User, error) {
	if !storage.ValidText(id) { // PostgreSQL refuses such a parameter: nothing can match it
		return nil, sqlstore.Wrap("get account", sql.ErrNoRows)
	}
	u, err := scanAccount(a.Querier(ctx).QueryRowContext(ctx, a.q(`SELECT `+accountCols+` FROM {accounts} WHERE account_id = ?`), id))
	return u, sqlstore.Wrap("get account", err)
}

func (a *usersOnAccounts) GetUserByEmail(ctx context.Context, org, email string) (*storage.User, error) {
	if !storage.ValidText(org) || !storage.ValidText(email) {
		return nil, sqlstore.Wrap("get account by email", sql.ErrNoRows)
	}
	u, err := scanAccount(a.Querier(ctx).QueryRowContext(ctx, a.q(`SELECT `+accountCols+` FROM {accounts} WHERE tenant = ? AND email_lower = ?`),
		org, storage.NormalizeEmail(email)))
	return u, sqlstore.Wrap("get account by email", err)
}

func (a *usersOnAccounts) UpdateUser(ctx context.Context, u *storage.User) error {
	res, err := a.Querier(ctx).ExecContext(ctx, a.q(`UPDATE {accounts} SET email = ?, email_lower = ?, pw = ?, given_name = ?, family_name = ?, modified = ?
		WHERE account_id = ?`), u.Email, storage.NormalizeEmail(u.Email), u.PasswordHash, u.FirstName, u.LastName, stamp(u.UpdatedAt), u.ID)
	if err != nil {
		return sqlstore.Wrap("update account", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return sqlstore.Wrap("update account", errors.Join(err, sql.ErrNoRows))
	}
	return nil
}

// SetPasswordHash writes the hash alone, in one statement, and with
// current set only over that hash: a password changed since the caller
// read it is storage.ErrConflict, a missing account storage.ErrNotFound.
func (a *usersOnAccounts) SetPasswordHash(ctx context.Context, id, current, hash string, at time.Time) error {
	query, args := `UPDATE {accounts} SET pw = ?, modified = ? WHERE account_id = ?`, []any{hash, stamp(at), id}
	if current != "" {
		query, args = query+` AND pw = ?`, append(args, current)
	}
	res, err := a.Querier(ctx).ExecContext(ctx, a.q(query), args...)
	if err != nil {
		return sqlstore.Wrap("set account password", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return sqlstore.Wrap("set account password", err)
	}
	if _, err := a.GetUser(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("set account password: changed since it was read: %w", storage.ErrConflict)
}

// TestConformanceOnTheApplicationsUsersTable: the adapter above, the
// store with the application's own users table, passes the whole
// conformance suite, on SQLite and on PostgreSQL.
func TestConformanceOnTheApplicationsUsersTable(t *testing.T) {
	dialects(t, func(t *testing.T, open opener) {
		storagetest.Run(t, func(t *testing.T) storage.Store {
			a, err := newUsersOnAccounts(t.Context(), open(t, sqlstore.Config{}))
			require.NoError(t, err)
			return a
		})
	})
}

// Gatehouse over an application's own users table: its rows sign in,
// with the hashes the application stored (bcrypt here), and Gatehouse's
// own tables hold the rest. usersOnAccounts, in this file, is the whole
// adapter: the five methods of storage.Users on the application's
// table, and the store embedded for everything else. The conformance
// suite checks it (TestConformanceOnTheApplicationsUsersTable).
func ExampleStore_applicationsOwnUsersTable() {
	ctx := context.Background()
	s, done := exampleStore(ctx) // opened and migrated as in Example
	defer done()
	store, err := newUsersOnAccounts(ctx, s) // the table exists already in a real application
	if err != nil {
		panic(err)
	}
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "acme", Name: "Acme Ltd", CreatedAt: time.Now()}
	if err := store.CreateOrganisation(ctx, org); err != nil {
		panic(err)
	}
	// A row the application wrote long before: bcrypt of "correct horse battery".
	_, err = s.Querier(ctx).ExecContext(ctx, `INSERT INTO gatehouse_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		"acct-1", org.ID, "Ada@Example.com", "ada@example.com", "$2a$04$tFNHHJxtxMqlP0fbSP96fOwEw896qSVIDaM4pvYO2bjCKMPEXtyVO",
		"Ada", "Lovelace", stamp(time.Now()), stamp(time.Now()))
	if err != nil {
		panic(err)
	}

	p, err := oauth.New(store, oauth.Config{Issuer: "https://api.example.com", Secret: []byte("a secret of at least thirty-two bytes!")})
	if err != nil {
		panic(err)
	}
	u, err := p.SignIn(httptest.NewRecorder(), httptest.NewRequest("POST", "/login", nil), "acme", "ada@example.com", "correct horse battery")
	fmt.Println(u.ID, u.FirstName, err)
	var pw string
	_ = s.Querier(ctx).QueryRowContext(ctx, `SELECT pw FROM gatehouse_accounts WHERE account_id = 'acct-1'`).Scan(&pw)
	fmt.Println("stored now:", strings.Split(pw, "$")[1])
	// Output:
	// acct-1 Ada <nil>
	// stored now: argon2id
}
