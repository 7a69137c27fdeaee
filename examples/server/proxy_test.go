package main_test

import (
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

// TestTrustedProxies: behind a reverse proxy (-trusted-proxies), the
// client a proxy names in X-Forwarded-For is the one the per-address
// limits count and the access log shows; without the flag the header is
// not believed, since any client could send it.
func TestTrustedProxies(t *testing.T) {
	testenv.ClearOfMinuteBoundary(15 * time.Second) // each client's 61 requests share one minute window
	t.Parallel()
	tokenPost := func(s *server, client string) int {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {"x"}}
		req, err := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", client)
		res, err := s.http.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	const waitFor, tick = 5 * time.Second, 20 * time.Millisecond
	t.Run("behind a trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"), "-trusted-proxies", "10.0.0.0/8, 127.0.0.0/8")
		r := s.do("GET", "/v1/contacts/me", s.demo["test API key (sandbox)"], nil, "X-Forwarded-For", "198.51.100.23, 10.1.2.3")
		require.Equal(t, 200, r.status)
		assert.Eventually(t, func() bool { return strings.Contains(s.logs(), `"remote":"198.51.100.23"`) }, waitFor, tick,
			"the right-most address that is not a trusted proxy")
		// The token endpoint allows 60 requests a minute per client.
		statuses := map[int]int{}
		for range 61 {
			statuses[tokenPost(s, "203.0.113.7")]++
		}
		assert.Equal(t, 1, statuses[429], "the 61st request of one client: %v", statuses)
		assert.NotEqual(t, 429, tokenPost(s, "203.0.113.8"), "another client behind the same proxy keeps its own budget")
	})
	t.Run("no trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"))
		r := s.do("GET", "/v1/contacts/me", s.demo["test API key (sandbox)"], nil, "X-Forwarded-For", "198.51.100.23")
		require.Equal(t, 200, r.status)
		assert.Eventually(t, func() bool { return strings.Contains(s.logs(), `"url":"/v1/contacts/me"`) }, waitFor, tick)
		assert.NotContains(t, s.logs(), "198.51.100.23", "a client cannot name its own address")
		assert.Contains(t, s.logs(), `"remote":"127.0.0.1"`)
		for range 60 {
			tokenPost(s, "203.0.113.7")
		}
		assert.Equal(t, 429, tokenPost(s, "203.0.113.8"), "a forged X-Forwarded-For does not buy a new budget")
	})
	t.Run("a bad CIDR is refused at start", func(t *testing.T) {
		t.Parallel()
		out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-db", "sqlite:"+filepath.Join(t.TempDir(), "g.db"), "-trusted-proxies", "10.0.0.0/33").CombinedOutput()
		require.Error(t, err)
		assert.Contains(t, string(out), `-trusted-proxies: "10.0.0.0/33" is not a CIDR`)
	})
}
