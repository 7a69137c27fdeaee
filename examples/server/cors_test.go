package main_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/paginate"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// TestCORS: a browser application on an allowed origin can call the API
// with its bearer token and read the headers Gatehouse sets; other origins
// get no CORS headers, and without -cors-origins none are sent at all.
func TestCORS(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	s := start(t, "sqlite:"+t.TempDir()+"/gatehouse.db", "-cors-origins", app+", http://localhost:3000")
	key := s.demo["test API key (sandbox)"]
	require.NotEmpty(t, key)

	preflight := func(path, origin, method string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("OPTIONS", s.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "authorization")
		res, err := http.DefaultClient.Do(req) // a preflight is no API operation: not validated against the document
		require.NoError(t, err)
		res.Body.Close()
		return res
	}

	t.Run("preflight from an allowed origin, before authentication", func(t *testing.T) {
		for _, tc := range []struct{ path, origin, method string }{
			{"/v1/bookings", app, "GET"},
			{"/v1/customers/00000000-0000-0000-0000-000000000000", "http://localhost:3000", "PATCH"},
			{"/oauth/token", app, "POST"},
			{"/oauth/revoke", app, "POST"},
		} {
			res := preflight(tc.path, tc.origin, tc.method)
			assert.Equal(t, 204, res.StatusCode, tc.path)
			assert.Equal(t, tc.origin, res.Header.Get("Access-Control-Allow-Origin"), tc.path)
			assert.Contains(t, res.Header.Get("Access-Control-Allow-Methods"), tc.method, tc.path)
			assert.Contains(t, res.Header.Get("Access-Control-Allow-Headers"), "Authorization", tc.path)
			assert.Equal(t, "Origin", res.Header.Get("Vary"), tc.path)
			assert.Empty(t, res.Header.Get("Access-Control-Allow-Credentials"), "bearer tokens only: no credentials mode")
		}
	})
	t.Run("preflight from another origin or for another method", func(t *testing.T) {
		res := preflight("/v1/bookings", "https://evil.example", "GET")
		assert.Equal(t, 204, res.StatusCode)
		assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))
		res = preflight("/oauth/token", app, "DELETE")
		assert.Empty(t, res.Header.Get("Access-Control-Allow-Methods"), "a method the endpoint does not serve is not allowed")
	})
	t.Run("requests from an allowed origin expose Gatehouse's headers", func(t *testing.T) {
		r := s.do("GET", "/v1/bookings", key, nil, "Origin", app)
		require.Equal(t, 200, r.status, string(r.body))
		assert.Equal(t, app, r.header.Get("Access-Control-Allow-Origin"))
		exposed := map[string]bool{}
		for _, name := range strings.Split(r.header.Get("Access-Control-Expose-Headers"), ",") {
			exposed[http.CanonicalHeaderKey(strings.TrimSpace(name))] = true
		}
		// Every header the response carries that a script needs is exposed.
		for _, name := range append(append([]string{"X-Request-Id"}, paginate.ExposedHeaders()...), ratelimit.ExposedHeaders()...) {
			assert.True(t, exposed[http.CanonicalHeaderKey(name)], "not exposed: %s", name)
		}
		for _, name := range []string{"X-Request-Id", "X-Pagination-Total-Entries", "X-Ratelimit-Remaining", "Link"} {
			assert.NotEmpty(t, r.header.Get(name), name)
		}
		// Errors are readable too.
		r = s.do("GET", "/v1/bookings", "", nil, "Origin", app)
		assert.Equal(t, 401, r.status)
		assert.Equal(t, app, r.header.Get("Access-Control-Allow-Origin"))
	})
	t.Run("other origins and same-origin requests get no CORS headers", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "https://app.example.evil", ""} {
			var hdr []string
			if origin != "" {
				hdr = []string{"Origin", origin}
			}
			r := s.do("GET", "/v1/bookings", key, nil, hdr...)
			require.Equal(t, 200, r.status)
			assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"), origin)
			assert.Empty(t, r.header.Get("Access-Control-Expose-Headers"), origin)
			assert.Equal(t, "Origin", r.header.Get("Vary"), "the answer depends on Origin, for caches")
		}
	})
	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		plain := start(t, "sqlite:"+t.TempDir()+"/gatehouse.db")
		r := plain.do("GET", "/v1/bookings", plain.demo["test API key (sandbox)"], nil, "Origin", app)
		require.Equal(t, 200, r.status)
		assert.Empty(t, r.header.Get("Access-Control-Allow-Origin"))
		assert.Empty(t, r.header.Get("Access-Control-Expose-Headers"))
		assert.Empty(t, r.header.Get("Vary"))
	})
	t.Run("bad origins are refused at start-up", func(t *testing.T) {
		for _, bad := range []string{"app.example", "https://app.example/path", "ftp://app.example", "https://user@app.example", "https://app.example?x=1"} {
			out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-db", "sqlite:"+t.TempDir()+"/g.db", "-cors-origins", bad).CombinedOutput()
			assert.Error(t, err, bad)
			assert.Contains(t, string(out), "-cors-origins", bad)
		}
	})
}
