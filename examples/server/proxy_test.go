package main_test

import (
	"bufio"
	"io"
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
		return s.postForm(t, "/oauth/token", form, "X-Forwarded-For", client)
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

// TestSecureCookiesBehindTLSProxy: behind a TLS-terminating proxy the
// server itself speaks plain HTTP, but its public URL (-issuer) is https:
// the sign-in cookies must be Secure, or a browser would send the session
// in clear to any http:// URL of the host. Served at an http URL (the
// local default), they cannot be.
func TestSecureCookiesBehindTLSProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		extra  []string
		secure bool
	}{
		{"https issuer, TLS at the proxy", []string{"-issuer", "https://api.example.test"}, true},
		{"local http", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The binary by hand: start's OpenAPI check expects the
			// document to name the listener, not an -issuer.
			cmd := exec.Command(binary, append([]string{"-addr", "127.0.0.1:0", "-db", "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")}, tc.extra...)...)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			var base, password string
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				if f := strings.Fields(line); len(f) == 4 && f[0] == "user" {
					password = f[3]
				}
				if rest, ok := strings.CutPrefix(line, "gatehouse listening on "); ok {
					base = rest
					break
				}
			}
			require.NotEmpty(t, base, "the server started")
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			form := url.Values{"domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {password}, "next": {"/dashboard/keys"}}
			req, err := http.NewRequest("POST", base+"/dashboard/login", strings.NewReader(form.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
			require.NoError(t, err)
			res.Body.Close()
			var session *http.Cookie
			for _, c := range res.Cookies() {
				if c.Value != "" && strings.Contains(strings.ToLower(c.Name), "session") {
					session = c
				}
			}
			require.NotNil(t, session, "signed in: %s %v", res.Status, res.Header["Set-Cookie"])
			assert.Equal(t, tc.secure, session.Secure, "Set-Cookie: %v", res.Header["Set-Cookie"])
			assert.True(t, session.HttpOnly)
		})
	}
}

// TestFailedAuthenticationsAreLimitedPerAddress: a client sending
// refused credentials (a guessed key with a valid checksum costs a
// storage lookup) is held to 100 a minute per address; after that its
// requests are answered 429 before any lookup, valid key or not, while
// other addresses and anonymous requests are unaffected.
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	testenv.ClearOfMinuteBoundary(20 * time.Second) // the failures must share one minute window
	t.Parallel()
	s := start(t, "sqlite:"+filepath.Join(t.TempDir(), "gatehouse.db"), "-trusted-proxies", "127.0.0.0/8")
	key := s.demo["test API key (sandbox)"]
	from := func(client, credential string) resp {
		return s.do("GET", "/v1/contacts/me", credential, nil, "X-Forwarded-For", client)
	}
	statuses := map[int]int{}
	for range 100 {
		statuses[from("203.0.113.50", "gate_test_"+strings.Repeat("A", 39)).status]++
	}
	assert.Equal(t, map[int]int{401: 100}, statuses, "refused, each counted")
	r := from("203.0.113.50", key)
	assert.Equal(t, 429, r.status, "the budget is spent: even a valid key waits")
	assert.NotEmpty(t, r.header.Get("Retry-After"))
	assert.Contains(t, string(r.body), `"window":"100/m"`)
	assert.Equal(t, 200, from("203.0.113.51", key).status, "another address is unaffected")
	for range 101 {
		require.Equal(t, 401, from("203.0.113.52", "").status, "requests without a credential do not count")
	}
}
