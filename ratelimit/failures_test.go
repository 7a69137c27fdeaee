package ratelimit_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// budgetServer is an API behind a FailureBudget and a Chain whose one
// authenticator accepts "good", refuses "bad", fails on "boom" and finds
// no credential otherwise; lookups counts its calls.
func budgetServer(t *testing.T, l ratelimit.Limiter, cfg ratelimit.FailureBudgetConfig) (srv *httptest.Server, lookups *atomic.Int64) {
	t.Helper()
	lookups = new(atomic.Int64)
	budget, err := ratelimit.NewFailureBudget(l, cfg)
	require.NoError(t, err)
	auth := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		lookups.Add(1)
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			return &gatehouse.Principal{KeyID: "key_1"}, nil
		case "Bearer bad":
			return nil, apierror.InvalidToken("API key not found")
		case "Bearer boom":
			return nil, errors.New("storage down")
		}
		return nil, gatehouse.ErrNoCredentials
	})
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{Logger: slog.New(slog.DiscardHandler), OnRefused: func(r *http.Request, _ error) { budget.Spend(r) }}, auth)
	require.NoError(t, err)
	srv = httptest.NewServer(budget.Handler(chain.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "[]") }))))
	t.Cleanup(srv.Close)
	return srv, lookups
}

func get(t *testing.T, srv *httptest.Server, credential, forwardedFor string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/v1/bookings", nil)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestFailureBudgetRefusesBeforeAnyLookupOnceSpent(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 10, 0, 10, 0, time.UTC)
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{Now: func() time.Time { return now }})
	three := ratelimit.MustPolicy("auth", "3/m")
	srv, lookups := budgetServer(t, lim, ratelimit.FailureBudgetConfig{Policy: &three,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})

	// Requests without a credential, successes and internal failures
	// spend nothing.
	for range 5 {
		res, _ := get(t, srv, "", "")
		assert.Equal(t, 401, res.StatusCode)
		res, _ = get(t, srv, "good", "")
		assert.Equal(t, 200, res.StatusCode)
		res, _ = get(t, srv, "boom", "")
		assert.Equal(t, 500, res.StatusCode)
	}
	for i := range 3 {
		res, _ := get(t, srv, "bad", "")
		assert.Equal(t, 401, res.StatusCode, "refusal %d is within the budget", i+1)
	}
	before := lookups.Load()
	for _, cred := range []string{"bad", "good", ""} {
		res, body := get(t, srv, cred, "")
		assert.Equal(t, 429, res.StatusCode, "credential %q after the budget is spent", cred)
		assert.Equal(t, "50", res.Header.Get("Retry-After"), "the minute window resets in 50 s")
		var env struct {
			Error struct {
				Code    string                   `json:"code"`
				Details ratelimit.RefusalDetails `json:"details"`
			} `json:"error"`
		}
		require.NoError(t, json.Unmarshal(body, &env), "%s", body)
		assert.Equal(t, "RATE_LIMITED", env.Error.Code)
		assert.Equal(t, ratelimit.RefusalDetails{Window: "3/m", Limit: 3, Remaining: 0, Reset: now.Truncate(time.Minute).Add(time.Minute).Unix()}, env.Error.Details)
	}
	assert.Equal(t, before, lookups.Load(), "a spent budget is refused before the authenticator runs")

	// Another client (behind the trusted proxy) has a budget of its own.
	res, _ := get(t, srv, "bad", "203.0.113.9")
	assert.Equal(t, 401, res.StatusCode)
	res, _ = get(t, srv, "good", "203.0.113.9")
	assert.Equal(t, 200, res.StatusCode)

	// The next minute, the first client may try again.
	now = now.Add(50 * time.Second)
	res, _ = get(t, srv, "good", "")
	assert.Equal(t, 200, res.StatusCode)
}

// countingLimiter counts the decisions asked of a brokenLimiter.
type countingLimiter struct {
	brokenLimiter
	calls atomic.Int64
}

func (c *countingLimiter) Allow(ctx context.Context, key string, p ratelimit.Policy, cost int64) (ratelimit.Result, error) {
	c.calls.Add(1)
	return c.brokenLimiter.Allow(ctx, key, p, cost)
}

func TestFailureBudgetLetsRequestsThroughWhenTheLimiterFails(t *testing.T) {
	t.Parallel()
	lim := &countingLimiter{}
	srv, _ := budgetServer(t, lim, ratelimit.FailureBudgetConfig{})
	for range 3 {
		res, _ := get(t, srv, "bad", "")
		assert.Equal(t, 401, res.StatusCode)
	}
	res, _ := get(t, srv, "good", "")
	assert.Equal(t, 200, res.StatusCode)
	assert.EqualValues(t, 3*2+1, lim.calls.Load(), "a check per request and a spend per refusal")
}

func TestNewFailureBudgetRejectsBadConfig(t *testing.T) {
	t.Parallel()
	_, err := ratelimit.NewFailureBudget(nil, ratelimit.FailureBudgetConfig{})
	assert.ErrorContains(t, err, "needs a limiter")
	_, err = ratelimit.NewFailureBudget(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.FailureBudgetConfig{Policy: &ratelimit.Policy{}})
	assert.ErrorContains(t, err, "1 to 4 windows")
}

// ctxLimiter records whether the context of each decision had ended.
type ctxLimiter struct{ ended []bool }

func (c *ctxLimiter) Allow(ctx context.Context, _ string, _ ratelimit.Policy, _ int64) (ratelimit.Result, error) {
	c.ended = append(c.ended, ctx.Err() != nil)
	return ratelimit.Result{Allowed: true}, nil
}

func TestFailureBudgetSpendsWhenTheClientHasGone(t *testing.T) {
	t.Parallel()
	lim := &ctxLimiter{}
	budget, err := ratelimit.NewFailureBudget(lim, ratelimit.FailureBudgetConfig{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client hung up after sending its guess
	budget.Spend(httptest.NewRequest("GET", "/v1/bookings", nil).WithContext(ctx))
	assert.Equal(t, []bool{false}, lim.ended, "a Redis limiter would refuse a cancelled context, and the guess would be free")
}

// BenchmarkFailureBudgetCheck is what the budget adds to every request
// that spends nothing: the client's key and one cost-0 decision.
func BenchmarkFailureBudgetCheck(b *testing.B) {
	budget, err := ratelimit.NewFailureBudget(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.FailureBudgetConfig{})
	if err != nil {
		b.Fatal(err)
	}
	h := budget.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest("GET", "/v1/bookings", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}
