package sqlstore_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// TestQuerierInAndOutOfTransactions: an application's own table, queried
// through Store.Querier (prepared statements on SQLite) inside and outside
// InTx, reads its own writes and never waits for a second connection
// inside a transaction — with a pool of one connection on SQLite, where
// preparing on another connection would hang.
func TestQuerierInAndOutOfTransactions(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sqlstore.Store
	}{
		{"sqlite-one-connection", func(t *testing.T) *sqlstore.Store {
			return openSQLite(t, sqlstore.Config{MaxOpenConns: 1})
		}},
		{"sqlite-memory", func(t *testing.T) *sqlstore.Store {
			s, err := sqlstore.Open(t.Context(), "sqlite::memory:", sqlstore.Config{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"sqlite", func(t *testing.T) *sqlstore.Store { return openSQLite(t, sqlstore.Config{MaxOpenConns: 2}) }},
		{"postgres", func(t *testing.T) *sqlstore.Store { return openPostgres(t, sqlstore.Config{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := tc.open(t)
			ctx := t.Context()
			table := "app_counter_" + filepath.Base(t.Name())
			if s.Dialect() == sqlstore.Postgres {
				table = "app_counter_pg"
				_, _ = s.DB().ExecContext(ctx, "DROP TABLE IF EXISTS "+table)
				t.Cleanup(func() { _, _ = s.DB().ExecContext(context.Background(), "DROP TABLE IF EXISTS "+table) })
			}
			table = sanitize(table)
			q := s.Querier(ctx)
			_, err := q.ExecContext(ctx, "CREATE TABLE "+table+" (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
			require.NoError(t, err)
			_, err = q.ExecContext(ctx, s.Dialect().Rebind("INSERT INTO "+table+" (id, n) VALUES (?, ?)"), "a", 0)
			require.NoError(t, err)
			read := func(ctx context.Context) int64 {
				var n int64
				require.NoError(t, s.Querier(ctx).QueryRowContext(ctx, s.Dialect().Rebind("SELECT n FROM "+table+" WHERE id = ?"), "a").Scan(&n))
				return n
			}
			assert.EqualValues(t, 0, read(ctx)) // prepares the read outside a transaction

			const workers, each = 4, 25
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range each {
						err := s.InTx(ctx, func(ctx context.Context) error {
							before := read(ctx) // the prepared read, bound to the transaction
							if _, err := s.Querier(ctx).ExecContext(ctx, s.Dialect().Rebind("UPDATE "+table+" SET n = n + 1 WHERE id = ?"), "a"); err != nil {
								return err
							}
							// Its own write is seen (PostgreSQL's read committed may
							// also show others' commits; SQLite serialises writers).
							if after := read(ctx); after < before+1 || (s.Dialect() == sqlstore.SQLite && after != before+1) {
								t.Errorf("inside the transaction: %d after %d", after, before)
							}
							return nil
						})
						if err != nil {
							t.Error(err)
							return
						}
						_ = read(ctx)
					}
				})
			}
			wg.Wait()
			assert.EqualValues(t, workers*each, read(ctx), "every committed increment is seen, none lost")
		})
	}
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}
