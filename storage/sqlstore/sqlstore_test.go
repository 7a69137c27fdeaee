package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/storage/storagetest"
)

func openSQLite(t testing.TB, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

// openPostgres opens the test database with a table prefix of its own, and
// drops the tables afterwards.
func openPostgres(t testing.TB, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	dsn := testenv.Postgres(t)
	if cfg.TablePrefix == "" {
		cfg.TablePrefix = testenv.Name("t") + "_"
	}
	cfg.MaxOpenConns = 8
	s, err := sqlstore.Open(t.Context(), dsn, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		dropTables(t, s.DB(), cfg.TablePrefix)
		_ = s.Close()
	})
	require.NoError(t, s.Migrate(t.Context()))
	return s
}

func dropTables(t testing.TB, db *sql.DB, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND starts_with(tablename, $1)`, prefix)
	if err != nil {
		t.Logf("drop tables: %v", err)
		return
	}
	var names []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		names = append(names, `"`+n+`"`)
	}
	_ = rows.Close()
	if len(names) > 0 {
		if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS `+strings.Join(names, ", ")); err != nil {
			t.Logf("drop tables: %v", err)
		}
	}
}

func TestConformanceSQLite(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return openSQLite(t, sqlstore.Config{}) })
}

func TestConformancePostgres(t *testing.T) {
	testenv.Postgres(t)
	storagetest.Run(t, func(t *testing.T) storage.Store { return openPostgres(t, sqlstore.Config{}) })
}

func TestConformanceEncrypted(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openSQLite(t, sqlstore.Config{EncryptionKey: key, TablePrefix: "enc_"})
	})
}

type opener func(t testing.TB, cfg sqlstore.Config) *sqlstore.Store

func dialects(t *testing.T, fn func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); fn(t, openSQLite) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); fn(t, openPostgres) })
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	dialects(t, func(t *testing.T, open opener) {
		s := open(t, sqlstore.Config{})
		applied := func() int {
			var n int
			require.NoError(t, s.DB().QueryRowContext(t.Context(), strings.ReplaceAll(`SELECT COUNT(*) FROM PREFIXschema_migrations`, "PREFIX", s.TablePrefix())).Scan(&n))
			return n
		}
		require.NoError(t, s.Migrate(t.Context()))
		assert.Equal(t, 6, applied(), "one row per migration (0001 to 0006)")
		require.NoError(t, s.Migrate(t.Context()))
		assert.Equal(t, 6, applied(), "none applied twice")
		_, err := s.DB().ExecContext(t.Context(), `SELECT COUNT(*) FROM `+s.TablePrefix()+`invalidations`)
		if s.Dialect() == sqlstore.SQLite {
			assert.NoError(t, err, "SQLite has the invalidations table")
		} else {
			assert.Error(t, err, "PostgreSQL, which uses NOTIFY, has none")
		}
	})
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"Bad", "1x_", "a-b", "x; DROP TABLE y; --", strings.Repeat("a", 40)} {
		_, err := sqlstore.New(&sql.DB{}, sqlstore.SQLite, sqlstore.Config{TablePrefix: p})
		assert.Error(t, err, p)
	}
	_, err := sqlstore.New(&sql.DB{}, sqlstore.SQLite, sqlstore.Config{EncryptionKey: []byte("short")})
	assert.Error(t, err)
	_, err = sqlstore.New(&sql.DB{}, sqlstore.Dialect(9), sqlstore.Config{})
	assert.Error(t, err)
	_, err = sqlstore.Open(t.Context(), "mysql://x", sqlstore.Config{})
	assert.ErrorContains(t, err, "sqlite:PATH")
	_, err = sqlstore.Open(t.Context(), "sqlite:", sqlstore.Config{})
	assert.Error(t, err)
	_, err = sqlstore.New(&sql.DB{}, sqlstore.SQLite, sqlstore.Config{BusyTimeout: -time.Second})
	assert.ErrorContains(t, err, "BusyTimeout")
	_, err = sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "x.db"), sqlstore.Config{BusyTimeout: -time.Second})
	assert.ErrorContains(t, err, "BusyTimeout")
}

// TestSQLiteWritesQueue: a SQLite store's writes — transactions, and
// statements run outside one — run one at a time and are served in the
// order they arrived; one that waits past BusyTimeout fails with
// storage.ErrUnavailable, one whose context ends while it waits fails with
// the context's error, and neither runs.
func TestSQLiteWritesQueue(t *testing.T) {
	t.Parallel()
	s := openSQLite(t, sqlstore.Config{BusyTimeout: 200 * time.Millisecond})
	org := func(name string) *storage.Organisation {
		return &storage.Organisation{ID: storage.NewID(), DomainPrefix: name, CreatedAt: time.Now()}
	}
	holding, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.InTx(t.Context(), func(context.Context) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	ran := false
	err := s.InTx(t.Context(), func(context.Context) error { ran = true; return nil })
	assert.ErrorIs(t, err, storage.ErrUnavailable, "transaction waited past BusyTimeout")
	late := org(testenv.Name("late"))
	assert.ErrorIs(t, s.CreateOrganisation(t.Context(), late), storage.ErrUnavailable, "statement waited past BusyTimeout")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err = s.InTx(ctx, func(context.Context) error { ran = true; return nil })
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, ran, "a transaction that never began must not run")

	// Queued behind the held one, transactions and single statements in
	// turn, each arriving once the one before it waits: SQLite's rowids
	// then follow the order of arrival.
	var (
		wg    sync.WaitGroup
		in    atomic.Int32
		names []string
	)
	const n = 6
	for i := range n {
		name := fmt.Sprintf("%s-%d", testenv.Name("q"), i)
		names = append(names, name)
		wg.Go(func() {
			if i%2 == 1 {
				assert.NoError(t, s.CreateOrganisation(t.Context(), org(name)))
				return
			}
			assert.NoError(t, s.InTx(t.Context(), func(ctx context.Context) error {
				if in.Add(1) != 1 {
					t.Error("two transactions ran at once")
				}
				defer in.Add(-1)
				return s.CreateOrganisation(ctx, org(name))
			}))
		})
		// WaitingWrites counts a write a moment before it joins the
		// channel's queue; its goroutine parked in the select is in it.
		require.Eventually(t, func() bool { return s.WaitingWrites() == i+1 && parkedWriters() == i+1 }, 5*time.Second, time.Millisecond)
	}
	close(release)
	require.NoError(t, <-held)
	wg.Wait()
	assert.Zero(t, s.WaitingWrites())
	rows, err := s.DB().QueryContext(t.Context(), `SELECT domain_prefix FROM gatehouse_organisations ORDER BY rowid`)
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var d string
		require.NoError(t, rows.Scan(&d))
		got = append(got, d)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, names, got, "written in the order they arrived (the late one never was)")
}

func TestSecretsEncryptedAtRest(t *testing.T) {
	dialects(t, func(t *testing.T, open opener) {
		key := []byte("0123456789abcdef0123456789abcdef")
		prefix := testenv.Name("enc") + "_"
		s := open(t, sqlstore.Config{EncryptionKey: key, TablePrefix: prefix})
		sub := &storage.Subscription{ID: storage.NewID(), OrganisationID: "org", Environment: "live", URL: "https://x.example",
			Events: []string{"*"}, Secret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		require.NoError(t, s.CreateSubscription(t.Context(), sub))
		var raw string
		require.NoError(t, s.DB().QueryRowContext(t.Context(), `SELECT secret FROM `+prefix+`subscriptions`).Scan(&raw))
		assert.True(t, strings.HasPrefix(raw, "enc:v1:"), raw)
		assert.NotContains(t, raw, "c2VjcmV0")
		got, err := s.GetSubscription(t.Context(), sub.ID)
		require.NoError(t, err)
		assert.Equal(t, sub.Secret, got.Secret)

		// The same rows read with the wrong key, or none, fail clearly.
		for _, k := range [][]byte{[]byte("fedcba9876543210fedcba9876543210"), nil} {
			other, err := sqlstore.New(s.DB(), s.Dialect(), sqlstore.Config{EncryptionKey: k, TablePrefix: prefix})
			require.NoError(t, err)
			_, err = other.GetSubscription(t.Context(), sub.ID)
			assert.Error(t, err)
		}
	})
}

func TestEnqueueTxFollowsTheApplicationsTransaction(t *testing.T) {
	dialects(t, func(t *testing.T, open opener) {
		s := open(t, sqlstore.Config{})
		ctx := t.Context()
		sub := &storage.Subscription{ID: storage.NewID(), OrganisationID: "org", Environment: "live", URL: "https://x.example",
			Events: []string{"*"}, Secret: "whsec_x", Enabled: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		require.NoError(t, s.CreateSubscription(ctx, sub))

		// The application's own write, then the event, in one transaction.
		write := func(ctx context.Context, tx *sql.Tx) {
			_, err := tx.ExecContext(ctx, s.Dialect().Rebind(`INSERT INTO `+s.TablePrefix()+`organisations (id, domain_prefix, name, plan, created_at) VALUES (?, ?, 'x', 'standard', 0)`),
				storage.NewID(), testenv.Name("p"))
			require.NoError(t, err)
			ev := &storage.Event{ID: storage.NewID(), OrganisationID: "org", Environment: "live", Type: "booking.created", Payload: []byte(`{}`), CreatedAt: time.Now()}
			require.NoError(t, s.EnqueueTx(ctx, tx, ev, []string{sub.ID}))
		}
		assert.Nil(t, s.Tx(ctx), "no transaction outside InTx")
		want := 0
		for _, inTx := range []bool{false, true} {
			for _, commit := range []bool{false, true} {
				if inTx { // the store's transaction, handed over by Tx
					err := s.InTx(ctx, func(ctx context.Context) error {
						tx := s.Tx(ctx)
						require.NotNil(t, tx)
						write(ctx, tx)
						if !commit {
							return assert.AnError
						}
						return nil
					})
					if commit {
						require.NoError(t, err)
					} else {
						require.ErrorIs(t, err, assert.AnError)
					}
				} else { // one the application began itself
					tx, err := s.DB().BeginTx(ctx, nil)
					require.NoError(t, err)
					write(ctx, tx)
					if commit {
						require.NoError(t, tx.Commit())
					} else {
						require.NoError(t, tx.Rollback())
					}
				}
				if commit {
					want++
				}
				ds, err := s.ListDeliveries(ctx, sub.ID, storage.Page{})
				require.NoError(t, err)
				assert.Len(t, ds, want, "in InTx %v, committed %v: the event is there exactly when committed", inTx, commit)
			}
		}
	})
}

func TestCancelledContext(t *testing.T) {
	dialects(t, func(t *testing.T, open opener) {
		s := open(t, sqlstore.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.GetClient(ctx, "x")
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "sqlstore: get client")
	})
}

func TestInTxRollsBack(t *testing.T) {
	dialects(t, func(t *testing.T, open opener) {
		s := open(t, sqlstore.Config{})
		id := storage.NewID()
		err := s.InTx(t.Context(), func(ctx context.Context) error {
			require.NoError(t, s.CreateOrganisation(ctx, &storage.Organisation{ID: id, DomainPrefix: testenv.Name("r"), CreatedAt: time.Now()}))
			return assert.AnError
		})
		assert.ErrorIs(t, err, assert.AnError)
		_, err = s.GetOrganisation(t.Context(), id)
		assert.ErrorIs(t, err, storage.ErrNotFound)
	})
}

func TestTwoStoresShareOutbox(t *testing.T) {
	// Two Store values (as in two processes) over one PostgreSQL database
	// claim concurrently: SKIP LOCKED keeps them from sharing a delivery.
	dsn := testenv.Postgres(t)
	prefix := testenv.Name("two") + "_"
	a := openPostgres(t, sqlstore.Config{TablePrefix: prefix})
	b, err := sqlstore.Open(t.Context(), dsn, sqlstore.Config{TablePrefix: prefix, MaxOpenConns: 4})
	require.NoError(t, err)
	defer b.Close()
	ctx := t.Context()
	now := time.Now()
	const n = 200
	for range n {
		require.NoError(t, a.Enqueue(ctx, &storage.Event{ID: storage.NewID(), OrganisationID: "o", Environment: "live", Type: "x", Payload: []byte(`{}`), CreatedAt: now}, []string{"sub"}))
	}
	seen := make(chan string, n*2)
	errs := make(chan error, 8)
	for _, s := range []*sqlstore.Store{a, b, a, b} {
		go func() {
			for {
				ds, err := s.ClaimDeliveries(ctx, "w", now, time.Hour, 7, nil)
				if err != nil {
					errs <- err
					return
				}
				if len(ds) == 0 {
					errs <- nil
					return
				}
				for _, d := range ds {
					seen <- d.ID
				}
			}
		}()
	}
	for range 4 {
		require.NoError(t, <-errs)
	}
	close(seen)
	got := map[string]int{}
	for id := range seen {
		got[id]++
	}
	assert.Len(t, got, n)
	for id, c := range got {
		assert.Equal(t, 1, c, id)
	}
}

func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	// A real refused connection through pgx's database/sql driver.
	db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	defer db.Close()
	refused := db.PingContext(t.Context())
	require.Error(t, refused)
	for name, c := range map[string]struct {
		err  error
		want bool
	}{
		"refused connection":     {refused, true},
		"ECONNRESET":             {fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		"admin shutdown (57P01)": {&pgconn.PgError{Code: "57P01"}, true},
		"connection failure":     {&pgconn.PgError{Code: "08006"}, true},
		"too many connections":   {&pgconn.PgError{Code: "53300"}, true},
		"unique violation":       {&pgconn.PgError{Code: "23505"}, false},
		"syntax error":           {&pgconn.PgError{Code: "42601"}, false},
		"no rows":                {sql.ErrNoRows, false},
		"cancelled by caller":    {context.Canceled, false},
		"nil":                    {nil, false},
	} {
		assert.Equal(t, c.want, sqlstore.IsUnavailable(c.err), name)
	}
}

// parkedWriters counts the goroutines blocked in awaitWriter's select:
// the writes in the writer channel's queue.
func parkedWriters() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	parked := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, " [select") && strings.Contains(g, "sqlstore.(*Store).awaitWriter") {
			parked++
		}
	}
	return parked
}

func TestRebind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, sqlite, postgres string }{
		{"SELECT 1", "SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ?", "SELECT a FROM t WHERE b = ?", "SELECT a FROM t WHERE b = $1"},
		{"INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			"INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"},
		{"SELECT 'ü' WHERE x = ?", "SELECT 'ü' WHERE x = ?", "SELECT 'ü' WHERE x = $1"},
	} {
		assert.Equal(t, tc.sqlite, sqlstore.SQLite.Rebind(tc.in))
		assert.Equal(t, tc.postgres, sqlstore.Postgres.Rebind(tc.in))
	}
}
