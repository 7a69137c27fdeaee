package oauth_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
)

// TestRotateClientSecret: after a rotation with a grace period both the
// new and the previous secret authenticate the client (the token endpoint
// with golang.org/x/oauth2, through fosite's client authentication, and
// introspection, through the provider's own); once the grace has passed, or after a rotation without one, or a
// second rotation, the previous secret is refused.
func TestRotateClientSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	token := func(secret string) error {
		_, err := (&clientcredentials.Config{ClientID: e.ccID, ClientSecret: secret, TokenURL: e.srv.URL + "/oauth/token", Scopes: []string{"staff:read"}}).Token(ctx)
		return err
	}
	introspect := func(secret string) int {
		res, _ := e.post("/oauth/introspect", url.Values{"token": {"gate_at_unknown"}}, e.ccID, secret)
		return res.StatusCode
	}
	original := e.ccSec
	require.NoError(t, token(original))

	second, c, err := e.p.RotateClientSecret(ctx, e.ccID, time.Hour)
	require.NoError(t, err)
	assert.NotEqual(t, original, second)
	assert.NotContains(t, c.SecretHash+c.PreviousSecretHash, second, "only hashes are stored")
	assert.WithinDuration(t, time.Now().Add(time.Hour), c.PreviousSecretExpiresAt, time.Minute)
	assert.NoError(t, token(second), "the new secret works")
	assert.NoError(t, token(original), "the previous one too, during the grace")
	assert.Equal(t, 200, introspect(original), "on the introspection endpoint as well")

	// The grace runs out (moved into the past in the store).
	stored, err := e.store.GetClient(ctx, e.ccID)
	require.NoError(t, err)
	stored.PreviousSecretExpiresAt = time.Now().Add(-time.Second)
	require.NoError(t, e.store.UpdateClient(ctx, stored))
	assertOAuthError(t, token(original), "invalid_client")
	assert.Equal(t, 401, introspect(original))
	assert.NoError(t, token(second))

	// A rotation without grace stops the current secret at once; a second
	// rotation ends the grace of the first.
	third, _, err := e.p.RotateClientSecret(ctx, e.ccID, 0)
	require.NoError(t, err)
	assertOAuthError(t, token(second), "invalid_client")
	fourth, _, err := e.p.RotateClientSecret(ctx, e.ccID, time.Hour)
	require.NoError(t, err)
	fifth, _, err := e.p.RotateClientSecret(ctx, e.ccID, time.Hour)
	require.NoError(t, err)
	assertOAuthError(t, token(third), "invalid_client")
	assert.NoError(t, token(fourth), "the one just before still works")
	assert.NoError(t, token(fifth))

	_, _, err = e.p.RotateClientSecret(ctx, e.pubID, time.Hour)
	var fe *oauth.FieldError
	require.ErrorAs(t, err, &fe, "a public client has no secret")
	_, _, err = e.p.RotateClientSecret(ctx, "nope", time.Hour)
	assert.ErrorIs(t, err, storage.ErrNotFound)
}

// clientReadHook runs a function once, after the next client lookup.
type clientReadHook struct {
	oauth.Store
	then testenv.Once
}

func (s *clientReadHook) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	c, err := s.Store.GetClient(ctx, id)
	s.then.Run()
	return c, err
}

// TestRotationsAtOnceKeepBothSecrets: a client secret rotated on one
// instance while another rotates it too keeps both new secrets working
// (the later as current, the other as previous through the grace):
// the rotation that read the client first no longer writes it back over
// the other, which had handed out a secret that never worked.
func TestRotationsAtOnceKeepBothSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	hook := &clientReadHook{Store: e.store}
	other, err := oauth.New(hook, oauth.Config{Issuer: e.srv.URL, Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	require.NoError(t, err)
	var first string
	hook.then.Set(func() {
		var err error
		first, _, err = e.p.RotateClientSecret(ctx, e.ccID, time.Hour)
		require.NoError(t, err)
	})
	second, _, err := other.RotateClientSecret(ctx, e.ccID, time.Hour)
	require.NoError(t, err)
	token := func(secret string) error {
		_, err := (&clientcredentials.Config{ClientID: e.ccID, ClientSecret: secret, TokenURL: e.srv.URL + "/oauth/token", Scopes: []string{"staff:read"}}).Token(ctx)
		return err
	}
	assert.NoError(t, token(second), "the rotation that wrote last")
	assert.NoError(t, token(first), "the rotation it met, as the previous secret")
	assertOAuthError(t, token(e.ccSec), "invalid_client")
}
