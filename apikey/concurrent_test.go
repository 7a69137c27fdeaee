package apikey_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
)

// interleaving runs a function once, right after the next read of a key
// by id: a change made by another instance while this one is between
// reading a key and writing it back.
type interleaving struct {
	storage.APIKeys
	then testenv.Once
}

func (s *interleaving) GetAPIKey(ctx context.Context, id string) (*storage.APIKey, error) {
	k, err := s.APIKeys.GetAPIKey(ctx, id)
	s.then.Run()
	return k, err
}

// TestChangesMadeMeanwhileAreKept: a change to a key (Update, Revoke,
// Expire, Rotate) racing another change to it, on another instance, or
// the key's own use of its budget, keeps both: a revoked key is never
// revived by an update that read it before the revocation, a rotated
// key keeps its end, and uses taken meanwhile stay taken. Of
// concurrent rotations of one key, one wins.
func TestChangesMadeMeanwhileAreKept(t *testing.T) {
	backends(t, func(t *testing.T, s storage.APIKeys) {
		ctx := t.Context()
		store := &interleaving{APIKeys: s}
		clk := newClock()
		m := newManager(t, store, apikey.Config{Now: clk.Now})
		other := newManager(t, s, apikey.Config{Now: clk.Now}) // another instance
		create := func() *storage.APIKey {
			_, k, err := m.Create(ctx, apikey.CreateParams{OrganisationID: "org", Name: "k", Scopes: []string{"staff:read"},
				Uses: &apikey.UsesBudget{Remaining: 100}})
			require.NoError(t, err)
			return k
		}
		meanwhile := store.then.Set
		get := func(id string) *storage.APIKey {
			k, err := s.GetAPIKey(ctx, id)
			require.NoError(t, err)
			return k
		}
		name := "renamed"

		k := create()
		meanwhile(func() { _, err := other.Revoke(ctx, k.ID); require.NoError(t, err) })
		_, err := m.Update(ctx, k.ID, apikey.UpdateParams{Name: &name})
		require.NoError(t, err)
		assert.False(t, get(k.ID).RevokedAt.IsZero(), "an update that read the key before its revocation revived it")
		assert.Equal(t, "renamed", get(k.ID).Name, "and the update is kept")

		k = create()
		meanwhile(func() { _, _, err := other.Rotate(ctx, k.ID, time.Hour); require.NoError(t, err) })
		_, err = m.Update(ctx, k.ID, apikey.UpdateParams{Name: &name})
		require.NoError(t, err)
		got := get(k.ID)
		assert.Equal(t, clk.Now().Add(time.Hour), got.ExpiresAt, "an update lost the rotation's end: the old key would never stop")
		assert.NotEmpty(t, got.Metadata["rotated_to"])

		k = create()
		meanwhile(func() {
			_, ok, err := s.ConsumeAPIKeyUses(ctx, k.ID, 30, clk.Now())
			require.NoError(t, err)
			require.True(t, ok)
		})
		_, err = m.Expire(ctx, k.ID, clk.Now().Add(24*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, int64(70), get(k.ID).UsesRemaining, "a change to the key gave back uses taken meanwhile")

		k = create()
		const n = 4
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []string
		for range n {
			wg.Go(func() {
				_, fresh, err := other.Rotate(ctx, k.ID, time.Hour)
				if err == nil {
					mu.Lock()
					won = append(won, fresh.ID)
					mu.Unlock()
				} else {
					assert.ErrorIs(t, err, apikey.ErrInvalidParams)
				}
			})
		}
		wg.Wait()
		require.Len(t, won, 1, "one key rotated into several")
		assert.Equal(t, won[0], get(k.ID).Metadata["rotated_to"])
		keys, _, err := s.ListAPIKeys(ctx, "org", storage.Page{Limit: 100})
		require.NoError(t, err)
		live := 0
		for _, x := range keys {
			if x.Metadata["rotated_from"] == k.ID && x.RevokedAt.IsZero() {
				live++
			}
		}
		assert.Equal(t, 1, live, "a losing rotation left a live key behind")
		_, _, err = other.Rotate(ctx, k.ID, 0)
		assert.ErrorIs(t, err, apikey.ErrInvalidParams, "a key rotated already is rotated no more")
	})
}

// TestChangesReachOtherInstancesAtOnce: with the store's Invalidator, a
// key revoked, expired or rotated on one instance (or changed in the
// store by other code, which then calls Invalidate) is refused by
// another at once, though that one verified the key a moment before and trusts
// its cache for an hour; an instance without it still accepts the key. On
// PostgreSQL and on SQLite, where the two are processes sharing a file (a
// server and the admin command).
func TestChangesReachOtherInstancesAtOnce(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		a := postgresStore(t)
		b, err := sqlstore.Open(t.Context(), testenv.Postgres(t), sqlstore.Config{TablePrefix: a.TablePrefix(), MaxOpenConns: 4})
		require.NoError(t, err)
		t.Cleanup(func() { _ = b.Close() })
		changesReachOtherInstances(t, a, b)
	})
	t.Run("sqlite, two processes on one file", func(t *testing.T) {
		dsn := "sqlite:" + filepath.Join(t.TempDir(), "k.db")
		open := func() *sqlstore.Store {
			s, err := sqlstore.Open(t.Context(), dsn, sqlstore.Config{})
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })
			require.NoError(t, s.Migrate(t.Context()))
			return s
		}
		changesReachOtherInstances(t, open(), open())
	})
}

func changesReachOtherInstances(t *testing.T, a, b *sqlstore.Store) {
	ctx := t.Context()
	here := newManager(t, a, apikey.Config{CacheTTL: time.Hour, Invalidator: a.Invalidator()})
	there := newManager(t, b, apikey.Config{CacheTTL: time.Hour, Invalidator: b.Invalidator()})
	unaware := newManager(t, b, apikey.Config{CacheTTL: time.Hour})

	for what, change := range map[string]func(id string) error{
		"revoked": func(id string) error { _, err := here.Revoke(ctx, id); return err },
		"expired": func(id string) error { _, err := here.Expire(ctx, id, time.Now().Add(-time.Minute)); return err },
		"rotated": func(id string) error { _, _, err := here.Rotate(ctx, id, 0); return err },
		"revoked in the store, then Invalidate": func(id string) error {
			k, err := a.GetAPIKey(ctx, id)
			if err != nil {
				return err
			}
			k.RevokedAt = time.Now()
			if err := a.UpdateAPIKey(ctx, k); err != nil {
				return err
			}
			here.Invalidate(ctx, id)
			return nil
		},
	} {
		secret, k, err := here.Create(ctx, apikey.CreateParams{OrganisationID: "org", Name: what, Scopes: []string{"staff:read"}})
		require.NoError(t, err)
		for _, m := range []*apikey.Manager{there, unaware} {
			_, err := m.Verify(ctx, secret.Reveal(), "192.0.2.1")
			require.NoError(t, err, what)
		}
		require.NoError(t, change(k.ID), what)
		require.Eventually(t, func() bool {
			_, err := there.Verify(ctx, secret.Reveal(), "192.0.2.1")
			var ve *apikey.VerifyError
			return errors.As(err, &ve)
		}, 30*time.Second, 5*time.Millisecond, "%s on one instance: refused on the other", what)
		_, err = unaware.Verify(ctx, secret.Reveal(), "192.0.2.1")
		assert.NoError(t, err, "%s: without the invalidator the cached key stays good for the cache TTL", what)
	}
}
