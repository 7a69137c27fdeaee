package apikey_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
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
