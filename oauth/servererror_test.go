package oauth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

// brokenUsers fails user lookups by email with an error of its own (not
// an outage) while broken is set.
type brokenUsers struct {
	storage.Store
	broken atomic.Bool
}

var errDiskOnFire = errors.New("users table: disk on fire")

func (s *brokenUsers) GetUserByEmail(ctx context.Context, org, email string) (*storage.User, error) {
	if s.broken.Load() {
		return nil, errDiskOnFire
	}
	return s.Store.GetUserByEmail(ctx, org, email)
}

// TestServerErrorIsLoggedWithItsCause: a store failure on the token
// endpoint answers 500 server_error without its cause, and logs the cause
// (fosite's error prints as "server_error" alone, which says nothing).
func TestServerErrorIsLoggedWithItsCause(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := &brokenUsers{Store: memory.New()}
	var logs syncBuffer
	p, err := oauth.New(st, oauth.Config{Issuer: "http://127.0.0.1", Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo", CreatedAt: time.Now()}
	require.NoError(t, st.CreateOrganisation(ctx, org))
	_, err = p.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "ada@example.com", Password: "correct horse battery"})
	require.NoError(t, err)
	secret, c, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "App", Grants: []string{"password"}, Scopes: []string{"bookings:read"}})
	require.NoError(t, err)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)

	st.broken.Store(true)
	res, err := srv.Client().PostForm(srv.URL+"/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"},
		"client_id": {c.ID}, "client_secret": {secret}, "username": {"ada@example.com"}, "password": {"correct horse battery"}})
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	body := string(raw)
	assert.Equal(t, 500, res.StatusCode)
	assert.Contains(t, body, `"server_error"`)
	assert.NotContains(t, body, "disk on fire", "the cause is not sent")
	assert.Contains(t, logs.String(), "disk on fire", "the cause is logged")
	assert.NotContains(t, logs.String(), "correct horse battery", "no password in the log")
}

// TestFormBodiesAreBounded: the token, revocation and introspection
// endpoints read at most 64 KiB of form (net/http alone reads 10 MB): a
// larger body is a 413 invalid_request, one within the limit is read.
func TestFormBodiesAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := strings.Repeat("a", 64<<10)
	for _, path := range []string{"/oauth/token", "/oauth/revoke", "/oauth/introspect"} {
		res, body := e.post(path, url.Values{"grant_type": {"client_credentials"}, "token": {"x"}, "pad": {big}}, e.ccID, e.ccSec)
		assert.Equal(t, 413, res.StatusCode, path)
		assert.Equal(t, "invalid_request", body["error"], path)
		assert.Contains(t, body["error_description"], "larger than 64 KiB", path)

		res, _ = e.post(path, url.Values{"grant_type": {"client_credentials"}, "token": {"x"}, "pad": {big[:60<<10]}}, e.ccID, e.ccSec)
		assert.Equal(t, 200, res.StatusCode, "%s: 60 KiB is within the limit", path)
	}
}
