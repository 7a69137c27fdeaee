package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
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

// eventually waits, without asserting any time, for cond.
func eventually(t *testing.T, cond func() bool, what string) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 5*time.Millisecond, what)
}

// listening waits until s's listener hears what s itself sends (a
// message sent before its LISTEN took effect is lost, so it sends again).
func listening(t *testing.T, s *sqlstore.Store) {
	t.Helper()
	h := &testenv.Heard{}
	cancel := s.Invalidator().OnInvalidate("probe", h.Add)
	defer cancel()
	require.Eventually(t, func() bool {
		require.NoError(t, s.Invalidator().Invalidate(t.Context(), "probe", "ping"))
		return h.Has("ping")
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

	keys, elsewhere := &testenv.Heard{}, &testenv.Heard{}
	b.Invalidator().OnInvalidate("apikey", keys.Add)
	other.Invalidator().OnInvalidate("apikey", elsewhere.Add)
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
	eventually(t, func() bool { return keys.Has("key_committed") && keys.Has("key_after") }, "the committed one and the one after")
	assert.False(t, keys.Has("key_rolled_back"), "a rolled-back transaction sends nothing")
	assert.False(t, elsewhere.Has("key_committed") || elsewhere.Has("key_after"), "another prefix hears nothing")

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
	h := &testenv.Heard{}
	a.Invalidator().OnInvalidate("apikey", h.Add)
	listening(t, a)
	h.Reset()

	res, err := a.DB().ExecContext(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN "`+a.TablePrefix()+`invalidate"`)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 1, n, "one listener connection")
	eventually(t, func() bool { return h.Has("") }, "told to drop everything after listening again")
	require.NoError(t, a.Invalidator().Invalidate(t.Context(), "apikey", "key_after"))
	eventually(t, func() bool { return h.Has("key_after") }, "heard after the reconnection")
}

// TestInvalidatorOnSQLite: on SQLite an invalidation reaches the sending
// store's handlers before Invalidate returns, and the other stores on the
// file (other processes) through the table: one sent in a transaction
// once it commits, never if it rolls back, and the sender's handlers hear
// it again then (a cache may have re-read the row before the commit).
func TestInvalidatorOnSQLite(t *testing.T) {
	t.Parallel()
	a, b := twoOnOneFile(t)
	here, there := &testenv.Heard{}, &testenv.Heard{}
	a.Invalidator().OnInvalidate("apikey", here.Add)
	b.Invalidator().OnInvalidate("apikey", there.Add)
	eventually(t, func() bool { return here.Has("") && there.Has("") }, "each poller's first read: forget what was cached before it")

	ctx := t.Context()
	require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_1"))
	assert.True(t, here.Has("key_1"), "the sender's handlers, at once")
	eventually(t, func() bool { return there.Has("key_1") }, "the other store, through the table")

	err := a.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_rolled_back"))
		return context.Canceled
	})
	require.ErrorIs(t, err, context.Canceled)
	here.Reset()
	require.NoError(t, a.InTx(ctx, func(ctx context.Context) error {
		require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_committed"))
		here.Reset() // heard at once; what counts is the second time, after the commit
		return nil
	}))
	require.NoError(t, a.Invalidator().Invalidate(ctx, "apikey", "key_after"))
	eventually(t, func() bool { return there.Has("key_committed") && there.Has("key_after") }, "the committed one and the one after")
	eventually(t, func() bool { return here.Has("key_committed") }, "the sender's handlers again, after the commit")
	assert.False(t, there.Has("key_rolled_back"), "a rolled-back transaction leaves nothing in the table")
	assert.False(t, here.Has("key_rolled_back"))
}

// TestInvalidatorSweepsOnSQLite: the poller removes rows older than it
// keeps them, and a poller that has not read for half that time (a process
// suspended meanwhile) has its handlers forget everything, since rows it
// never read may be gone.
func TestInvalidatorSweepsOnSQLite(t *testing.T) {
	t.Parallel()
	a, b := twoOnOneFile(t)
	sqlstore.SetInvalidationTimes(a, 10*time.Millisecond, 10*time.Millisecond, time.Hour)
	h := &testenv.Heard{}
	a.Invalidator().OnInvalidate("apikey", h.Add)
	eventually(t, func() bool { return h.Has("") }, "the first read")
	h.Reset()
	for i := range 3 {
		require.NoError(t, b.Invalidator().Invalidate(t.Context(), "apikey", fmt.Sprint("key_", i)))
	}
	eventually(t, func() bool { return h.Has("key_2") }, "heard")
	var n int
	require.NoError(t, a.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM gatehouse_invalidations`).Scan(&n))
	assert.Equal(t, 3, n, "rows younger than an hour are kept")
	assert.False(t, h.Has(""), "a poller that reads on time forgets nothing more")

	c, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"), sqlstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Migrate(t.Context()))
	sqlstore.SetInvalidationTimes(c, 10*time.Millisecond, 10*time.Millisecond, 0)
	late := &testenv.Heard{}
	c.Invalidator().OnInvalidate("apikey", late.Add)
	require.NoError(t, c.Invalidator().Invalidate(t.Context(), "apikey", "key_old"))
	eventually(t, func() bool {
		require.NoError(t, c.DB().QueryRowContext(t.Context(), `SELECT COUNT(*) FROM gatehouse_invalidations`).Scan(&n))
		return n == 0
	}, "rows older than kept are removed")
	late.Reset()
	eventually(t, func() bool { return late.Has("") }, "a poller later than half the keeping time forgets everything")
}

// TestInvalidatorTellsAGapOnce: a SQLite poller whose reads fail for
// longer than half the keeping time may have missed rows removed
// meanwhile. It has its handlers forget everything once, at the first
// read that succeeds again; while its reads fail the caches keep what they
// hold (forgetting at every tick would send every request of an instance
// to the database for as long as the table cannot be read).
func TestInvalidatorTellsAGapOnce(t *testing.T) {
	t.Parallel()
	s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "gap.db"), sqlstore.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Migrate(t.Context()))
	const keep = time.Second // a gap is more than half of it
	sqlstore.SetInvalidationTimes(s, 10*time.Millisecond, time.Hour, keep)
	h := &testenv.Heard{}
	s.Invalidator().OnInvalidate("apikey", h.Add)
	eventually(t, func() bool { return h.Has("") }, "the first read")
	h.Reset()

	_, err = s.DB().ExecContext(t.Context(), `ALTER TABLE gatehouse_invalidations RENAME TO gatehouse_invalidations_away`)
	require.NoError(t, err)
	time.Sleep(keep/2 + keep/4) // reads fail for longer than a gap
	assert.Zero(t, h.Count(""), "nothing is forgotten while reads fail")
	_, err = s.DB().ExecContext(t.Context(), `ALTER TABLE gatehouse_invalidations_away RENAME TO gatehouse_invalidations`)
	require.NoError(t, err)
	eventually(t, func() bool { return h.Has("") }, "the first read after the gap forgets everything")
	require.NoError(t, s.Invalidator().Invalidate(t.Context(), "apikey", "key_after"))
	eventually(t, func() bool { return h.Has("key_after") }, "reads go on")
	assert.Equal(t, 1, h.Count(""), "the gap is told once")
}
