package oauth_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// recordingLimiter is a real Memory limiter that remembers the keys it
// was asked about and fails, when told to, on checks (cost 0) or counts
// (cost 1).
type recordingLimiter struct {
	mem *ratelimit.Memory

	mu                      sync.Mutex
	keys                    []string
	failChecks, failCounted bool
}

var errLimiterDown = errors.New("limiter down")

func (l *recordingLimiter) Allow(ctx context.Context, key string, p ratelimit.Policy, cost int64) (ratelimit.Result, error) {
	l.mu.Lock()
	l.keys = append(l.keys, key)
	fail := (cost == 0 && l.failChecks) || (cost > 0 && l.failCounted)
	l.mu.Unlock()
	if fail {
		return ratelimit.Result{}, errLimiterDown
	}
	return l.mem.Allow(ctx, key, p, cost)
}

func passwordForm(e *env, pass string) url.Values {
	return url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "client_id": {e.confID}, "client_secret": {e.confSec},
		"username": {"ada@example.com"}, "password": {pass}}
}

// TestSignInLimitSharedByInstances: two Providers (two instances of one
// deployment) given one LoginLimiter share the count of an account's
// failed sign-ins, so guessing on both does not double the attempts.
func TestSignInLimitSharedByInstances(t *testing.T) {
	testenv.ClearOfMinuteBoundary(20 * time.Second) // the failures must share one minute window
	t.Parallel()
	shared := &recordingLimiter{mem: ratelimit.NewMemory(ratelimit.MemoryConfig{})}
	var cfg oauth.Config
	e := newEnv(t, func(c *oauth.Config) { c.LoginLimiter = shared; cfg = *c })
	other, err := oauth.New(e.store, cfg)
	require.NoError(t, err)
	srv2 := httptest.NewServer(other.Handler())
	t.Cleanup(srv2.Close)

	post := func(base, pass string) int {
		res, err := http.PostForm(base+"/oauth/token", passwordForm(e, pass))
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 10 { // the default limit: 10 failures a minute per account
		require.Equal(t, 400, post([]string{e.srv.URL, srv2.URL}[i%2], "guess"))
	}
	assert.Equal(t, 429, post(srv2.URL, "correct horse battery"), "five failures on each instance are ten for the account")
	assert.Equal(t, 429, post(e.srv.URL, "correct horse battery"))

	shared.mu.Lock()
	defer shared.mu.Unlock()
	require.NotEmpty(t, shared.keys)
	for _, k := range shared.keys {
		assert.True(t, strings.HasPrefix(k, "signin:"), k)
		assert.NotContains(t, k, "ada", "no email in the limiter's keys")
		assert.NotContains(t, k, "example.com", "no email in the limiter's keys")
	}
}

// TestSignInLimiterFailing: while the limiter cannot check, no password
// is checked (503 temporarily_unavailable; SignIn returns the error);
// while it cannot count, the sign-in goes on and the lost count is logged.
func TestSignInLimiterFailing(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	lim := &recordingLimiter{mem: ratelimit.NewMemory(ratelimit.MemoryConfig{}), failChecks: true}
	e := newEnv(t, func(c *oauth.Config) {
		c.LoginLimiter = lim
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})

	res, body := e.post("/oauth/token", passwordForm(e, "correct horse battery"), "", "")
	assert.Equal(t, 503, res.StatusCode)
	assert.Equal(t, "temporarily_unavailable", body["error"])
	assert.NotContains(t, body["error_description"], "limiter down", "the cause is logged, not sent")

	req := httptest.NewRequest("POST", "/dashboard/login", nil)
	_, err := e.p.SignIn(httptest.NewRecorder(), req, "demo", "ada@example.com", "correct horse battery")
	assert.ErrorIs(t, err, errLimiterDown)
	assert.Equal(t, 503, apierror.From(err).Status, "an outage, for apierror too")

	// The authorization page's sign-in form: 503 with Retry-After and the
	// form again, not a 500.
	conf := e.conf(e.confID, e.confSec, "bookings:read")
	b := newBrowser(t)
	res, page := b.get(conf.AuthCodeURL("state-123456", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, page, `value="login"`)
	res, page = b.submit(page, e.srv.URL, url.Values{"action": {"login"}, "domain_prefix": {"demo"}, "email": {"ada@example.com"}, "password": {"correct horse battery"}})
	assert.Equal(t, 503, res.StatusCode)
	assert.Equal(t, "5", res.Header.Get("Retry-After"))
	assert.Contains(t, page, "Signing in is unavailable for a moment")
	assert.Contains(t, page, `value="ada@example.com"`, "the form keeps what was typed")
	assert.NotContains(t, page, "correct horse battery", "but not the password")

	lim.mu.Lock()
	lim.failChecks, lim.failCounted = false, true
	lim.mu.Unlock()
	res, body = e.post("/oauth/token", passwordForm(e, "guess"), "", "")
	assert.Equal(t, 400, res.StatusCode)
	assert.Equal(t, "invalid_grant", body["error"])
	assert.Contains(t, logs.String(), "a failed sign-in was not counted")
	assert.NotContains(t, logs.String(), "guess", "no password in the log")
	res, _ = e.post("/oauth/token", passwordForm(e, "correct horse battery"), "", "")
	assert.Equal(t, 200, res.StatusCode)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
