package oauth_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
)

// pausingStore runs a function once, as the next token of kind is
// stored (before or after the store takes it): a revocation landing in
// the middle of a refresh, after the old refresh token rotated and
// before the client has the new pair.
type pausingStore struct {
	oauth.Store
	mu            sync.Mutex
	kind          storage.TokenKind
	before, after func()
}

func (s *pausingStore) take() (before, after func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	before, after, s.before, s.after = s.before, s.after, nil, nil
	return before, after
}

func (s *pausingStore) CreateToken(ctx context.Context, t *storage.Token) error {
	s.mu.Lock()
	kind := s.kind
	s.mu.Unlock()
	if t.Kind != kind {
		return s.Store.CreateToken(ctx, t)
	}
	before, after := s.take()
	if before != nil {
		before()
	}
	err := s.Store.CreateToken(ctx, t)
	if after != nil {
		after()
	}
	return err
}

// TestRevocationDuringARefresh: a grant revoked while one of its refresh
// tokens is being exchanged (the client revoking the token it holds at
// sign-out, the user disconnecting the application, or another client
// replaying the token) ends with no token of the grant active, the
// refresh's new pair included, and the refresh is refused; on every
// store, with the revocation on another instance, with and without a
// reuse grace, wherever in the refresh the revocation lands.
func TestRevocationDuringARefresh(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		inner, n := open()
		store := &pausingStore{Store: inner}
		last := n - 1
		revocations := []struct {
			name   string
			revoke func(f *graceFixture, rt string)
		}{
			{"the client revokes the token it holds", func(f *graceFixture, rt string) {
				status, body := f.post(last, "/oauth/revoke", url.Values{"token": {rt}, "token_type_hint": {"refresh_token"}}, f.id, f.sec)
				assert.Equal(t, 200, status, body)
			}},
			{"the user disconnects the application", func(f *graceFixture, _ string) {
				// Between the rotation and the new access token nothing
				// of the grant is active: it may end none.
				_, err := f.provs[last].Disconnect(context.Background(), f.user, f.id)
				assert.NoError(t, err)
			}},
			{"another client replays the token", func(f *graceFixture, rt string) {
				status, body := f.token(last, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, f.other, f.otherSec)
				assert.Equal(t, 400, status, body)
			}},
		}
		keys, err := oauth.NewKeySet()
		require.NoError(t, err)
		for _, grace := range []time.Duration{0, time.Minute, -1} {
			jwt := grace < 0 // JWT access tokens, no grace
			f := newFixture(t, store, n, func(c *oauth.Config) {
				c.RefreshReuseGrace = max(grace, 0)
				if jwt {
					c.JWTKeys, c.JWTAudience = keys, "https://api.example"
				}
			})
			for _, rv := range revocations {
				for _, when := range []string{"before the new access token is stored", "before the new refresh token is stored", "after it is stored"} {
					rt := f.signIn()
					revoke := func() { rv.revoke(f, rt) }
					store.mu.Lock()
					switch when {
					case "before the new access token is stored":
						store.kind, store.before = storage.KindAccessToken, revoke
					case "before the new refresh token is stored":
						store.kind, store.before = storage.KindRefreshToken, revoke
					default:
						store.kind, store.after = storage.KindRefreshToken, revoke
					}
					store.mu.Unlock()
					status, _, _, body := f.refresh(0, rt)
					name := max(grace, 0).String() + " grace, " + rv.name + ", " + when
					if jwt {
						name = "JWT, " + name
					}
					assert.Equal(t, 400, status, "%s: %v", name, body)
					assert.Equal(t, "invalid_grant", body["error"], name)
					granted, err := inner.GrantedClients(t.Context(), f.user, time.Now())
					require.NoError(t, err)
					assert.Empty(t, granted, "%s: a token of the revoked grant is still active", name)
					before, after := store.take()
					require.Nil(t, before, name)
					require.Nil(t, after, name)
				}
			}
			// Without a revocation the same refresh goes through.
			status, _, rt, body := f.refresh(0, f.signIn())
			require.Equal(t, 200, status, body)
			status, _, _, body = f.refresh(last, rt)
			require.Equal(t, 200, status, body)

			// Revoking the token a grant last rotated from revokes the
			// grant; revoking one rotated before that ends nothing.
			rt0 := f.signIn()
			status, _, rt1, _ := f.refresh(0, rt0)
			require.Equal(t, 200, status)
			status, _, rt2, _ := f.refresh(0, rt1)
			require.Equal(t, 200, status)
			status, _ = f.post(last, "/oauth/revoke", url.Values{"token": {rt0}}, f.id, f.sec)
			require.Equal(t, 200, status)
			status, _, rt3, body := f.refresh(last, rt2)
			require.Equal(t, 200, status, "a token rotated twice ago is revoked alone: %v", body)
			status, _ = f.post(last, "/oauth/revoke", url.Values{"token": {rt2}}, f.id, f.sec)
			require.Equal(t, 200, status)
			status, _, _, body = f.refresh(0, rt3)
			assert.Equal(t, 400, status, "revoking the token the grant last rotated from revokes the grant: %v", body)
		}
	})
}

// TestRevocationRacesARefresh: a refresh and a revocation of its grant
// sent at once, many times, on every store (the revocation on another
// instance): whichever wins, nothing of the grant is active afterwards
// and the refresh, when it succeeded, answered before the revocation
// took its pair.
func TestRevocationRacesARefresh(t *testing.T) {
	t.Parallel()
	onGraceStores(t, func(t *testing.T, open func() (oauth.Store, int)) {
		store, n := open()
		f := newGraceFixture(t, store, 0, n)
		last := n - 1
		won := 0
		for i := range 40 {
			rt := f.signIn()
			var wg sync.WaitGroup
			var status int
			wg.Go(func() { status, _, _, _ = f.refresh(0, rt) })
			wg.Go(func() {
				if i%2 == 0 {
					s, body := f.post(last, "/oauth/revoke", url.Values{"token": {rt}}, f.id, f.sec)
					assert.Equal(t, 200, s, body)
				} else {
					_, err := f.provs[last].Disconnect(context.Background(), f.user, f.id)
					assert.NoError(t, err)
				}
			})
			wg.Wait()
			if status == 200 {
				won++
			}
			granted, err := store.GrantedClients(t.Context(), f.user, time.Now())
			require.NoError(t, err)
			require.Empty(t, granted, "race %d (refresh answered %d): a token of the revoked grant is still active", i, status)
		}
		t.Logf("the refresh answered 200 in %d of 40 races", won)
	})
}
