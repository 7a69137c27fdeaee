package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/storage/storagetest"
)

var _ gatehouse.Invalidator = (*sqlstore.Invalidator)(nil)

// heard collects the keys a handler receives.
type heard struct {
	mu   sync.Mutex
	keys []string
}

func (h *heard) add(k string) { h.mu.Lock(); h.keys = append(h.keys, k); h.mu.Unlock() }

func (h *heard) reset() { h.mu.Lock(); h.keys = nil; h.mu.Unlock() }

func (h *heard) has(k string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, got := range h.keys {
		if got == k {
			return true
		}
	}
	return false
}

// eventually waits, without asserting any time, for cond.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 5*time.Millisecond, what)
}

// listening waits until s's listener hears what s itself sends (a
// message sent before its LISTEN took effect is lost, so it sends again).
func listening(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	h := &heard{}
	cancel := s.Invalidator().OnInvalidate("probe", h.add)
	defer cancel()
	require.Eventually(t, func() bool {
		require.NoError(t, s.Invalidator().Invalidate(t.Context(), "probe", "ping"))
		return h.has("ping")
	}, 30*time.Second, 50*time.Millisecond, "the listener hears")
}

// TestInvalidatorConformance: the store's Invalidator passes the suite an
// Invalidator of another backend would: on PostgreSQL two stores (two
// pools, as two instances have) on one database and prefix; on SQLite two
// stores on one file, as a server and the admin command are.
func TestInvalidatorConformance(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		storagetest.RunInvalidator(t, func(t *testing.T) (storagetest.Invalidator, storagetest.Invalidator) {
			a := openPostgres(t, sqlstore.Config{})
			b, err := sqlstore.Open(t.Context(), testenv.Postgres(t), sqlstore.Config{TablePrefix: a.TablePrefix()})
			require.NoError(t, err)
			t.Cleanup(func() { _ = b.Close() })
			return a.Invalidator(), b.Invalidator()
		})
	})
	t.Run("sqlite", func(t *testing.T) {
		storagetest.RunInvalidator(t, func(t *testing.T) (storagetest.Invalidator, storagetest.Invalidator) {
			a, b := twoOnOneFile(t)
			return a.Invalidator(), b.Invalidator()
		})
	})
}

// twoOnOneFile opens two stores on one SQLite file, as a server and the
// admin command have.
func twoOnOneFile(t *testing.T) (a, b *sqlstore.Store) {
	t.Helper()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	for _, s := range []**sqlstore.Store{&a, &b} {
		var err error
		*s, err = sqlstore.Open(t.Context(), dsn, sqlstore.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = (*s).Close() })
		require.NoError(t, (*s).Migrate(t.Context()))
	}
	return a, b
}

// TestInvalidatorOnPostgres: what the store's Invalidator does beyond the
// suite, on PostgreSQL: stores of another prefix hear nothing; one sent
// in a transaction arrives when it commits and never if it rolls back; a
// topic of two words or a message PostgreSQL would refuse is an error.
func TestInvalidatorOnPostgres(t *testing.T) {
	a := openPostgres(t, sqlstore.Config{})
	b, err := sqlstore.Open(t.Context(), testenv.Postgres(t), sqlstore.Config{TablePrefix: a.TablePrefix()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	other := openPostgres(t, sqlstore.Config{})

	keys, elsewhere := &heard{}, &heard{}
	b.Invalidator().OnInvalidate("apikey", keys.add)
	other.Invalidator().OnInvalidate("apikey", elsewhere.add)
	listening(t, b)
	listening(t, other)

	ctx := t.Context()
	err = a.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_rolled_back"))
		return context.Canceled
	})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, a.InTx(ctx, func(ctx context.Context) error {
		return a.Invalidator().Invalidate(ctx, "apikey", "key_committed")
	}))
	require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_after"))
	eventually(t, func() bool { return keys.has("key_committed") && keys.has("key_after") }, "the committed one and the one after")
	assert.False(t, keys.has("key_rolled_back"), "a rolled-back transaction sends nothing")
	assert.False(t, elsewhere.has("key_committed") || elsewhere.has("key_after"), "another prefix hears nothing")

	for _, bad := range [][2]string{{"", "k"}, {"two words", "k"}, {"apikey", string(make([]byte, 8000))}} {
		assert.Error(t, a.Invalidator().Invalidate(ctx, bad[0], bad[1]), "%q", bad[0])
	}
}

// TestInvalidatorListensAgain: when the listener's connection is killed
// (a PostgreSQL restart, a proxy dropping it), the listener connects
// again, tells every handler that messages may have been missed (the
// empty key), and hears the ones sent after.
func TestInvalidatorListensAgain(t *testing.T) {
	a := openPostgres(t, sqlstore.Config{})
	h := &heard{}
	a.Invalidator().OnInvalidate("apikey", h.add)
	listening(t, a)
	h.reset()

	res, err := a.DB().ExecContext(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN "`+a.TablePrefix()+`invalidate"`)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 1, n, "one listener connection")
	eventually(t, func() bool { return h.has("") }, "told to drop everything after listening again")
	require.NoError(t, a.Invalidator().Invalidate(t.Context(), "apikey", "key_after"))
	eventually(t, func() bool { return h.has("key_after") }, "heard after the reconnection")
}

// TestInvalidatorOnSQLite: on SQLite an invalidation reaches the sending
// store's handlers before Invalidate returns, and the other stores on the
// file (other processes) through the table: one sent in a transaction
// once it commits, never if it rolls back, and the sender's handlers hear
// it again then (a cache may have re-read the row before the commit).
func TestInvalidatorOnSQLite(t *testing.T) {
	t.Parallel()
	a, b := twoOnOneFile(t)
	here, there := &heard{}, &heard{}
	a.Invalidator().OnInvalidate("apikey", here.add)
	b.Invalidator().OnInvalidate("apikey", there.add)
	eventually(t, func() bool { return here.has("") && there.has("") }, "each poller's first read: forget what was cached before it")

	ctx := t.Context()
	require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_1"))
	assert.True(t, here.has("key_1"), "the sender's handlers, at once")
	eventually(t, func() bool { return there.has("key_1") }, "the other store, through the table")

	err := a.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_rolled_back"))
		return context.Canceled
	})
	require.ErrorIs(t, err, context.Canceled)
	here.reset()
	require.NoError(t, a.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_committed"))
		here.reset() // heard at once; what counts is the second time, after the commit
		return nil
	}))
	require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_after"))
	eventually(t, func() bool { return there.has("key_committed") && there.has("key_after") }, "the committed one and the one after")
	eventually(t, func() bool { return here.has("key_committed") }, "the sender's handlers again, after the commit")
	assert.False(t, there.has("key_rolled_back"), "a rolled-back transaction leaves nothing in the table")
	assert.False(t, here.has("key_rolled_back"))
}

// TestInvalidatorSweepsOnSQLite: the poller removes rows older than it
// keeps them, and a poller that has not read for half that time (a process
// suspended meanwhile) has its handlers forget everything, since rows it
// never read may be gone.
func TestInvalidatorSweepsOnSQLite(t *testing.T) {
	t.Parallel()
	a, b := twoOnOneFile(t)
	sqlstore.SetInvalidationTimes(a, 10*time.Millisecond, 10*time.Millisecond, time.Hour)
	h := &heard{}
	a.Invalidator().OnInvalidate("apikey", h.add)
	eventually(t, func() bool { return h.has("") }, "the first read")
	h.reset()
	for i := range 3 {
		require.NoError(t, b.Invalidator().Invalidate(t.Context(), "apikey", fmt.Sprint("key_", i)))
	}
	eventually(t, func() bool { return h.has("key_2") }, "heard")
	var n int
	require.NoError(t, a.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM gatehouse_invalidations`).Scan(&n))
	assert.Equal(t, 3, n, "rows younger than an hour are kept")
	assert.False(t, h.has(""), "a poller that reads on time forgets nothing more")

	c, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"), sqlstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Migrate(t.Context()))
	sqlstore.SetInvalidationTimes(c, 10*time.Millisecond, 10*time.Millisecond, 0)
	late := &heard{}
	c.Invalidator().OnInvalidate("apikey", late.add)
	require.NoError(t, c.Invalidator().Invalidate(t.Context(), "apikey", "key_old"))
	eventually(t, func() bool {
		require.NoError(t, c.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM gatehouse_invalidations`).Scan(&n))
		return n == 0
	}, "rows older than kept are removed")
	late.reset()
	eventually(t, func() bool { return late.has("") }, "a poller later than half the keeping time forgets everything")
}
