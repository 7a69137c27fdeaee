package main_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
)

// TestSecurity holds one named subtest per security property of the
// reference server (docs/SECURITY.md maps each to RFC 9700 and the OWASP
// API Security Top 10). The OAuth redirect, CSRF and code-replay
// properties are in TestOAuthFlowsWithXOAuth2 and
// TestBrowserDashboardAndAuthorizationCode; the dashboard's in
// TestDashboard.
func TestSecurity(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s := start(t, db)
	testKey, liveKey := s.demo["test API key (sandbox)"], s.demo["live API key"]
	password := strings.Fields(s.demo["user"])[2]

	// Organisation A (demo) owns one of everything, in test and in live.
	owned := func(key string) map[string]string {
		ids := map[string]string{}
		r := s.do("POST", "/v1/customers", key, map[string]any{"first_name": "A", "last_name": "B", "email": "a@example.com"})
		require.Equal(t, 201, r.status, string(r.body))
		ids["customers"] = r.json(t)["id"].(string)
		r = s.do("POST", "/v1/bookings", key, map[string]any{"customer_id": ids["customers"], "service": "S", "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:00:00Z"})
		require.Equal(t, 201, r.status, string(r.body))
		ids["bookings"] = r.json(t)["id"].(string)
		r = s.do("POST", "/v1/payments", key, map[string]any{"customer_id": ids["customers"], "amount": 100, "currency": "AUD"})
		require.Equal(t, 201, r.status, string(r.body))
		ids["payments"] = r.json(t)["id"].(string)
		r = s.do("POST", "/v1/webhooks", key, map[string]any{"url": "https://93.184.215.14/in", "events": []string{"booking.*"}})
		require.Equal(t, 201, r.status, string(r.body))
		ids["webhooks"] = r.json(t)["id"].(string)
		var staff []map[string]any
		r = s.do("GET", "/v1/staff", key, nil)
		require.NoError(t, json.Unmarshal(r.body, &staff))
		ids["staff"] = staff[0]["id"].(string)
		return ids
	}
	testIDs, liveIDs := owned(testKey), owned(liveKey)
	// reach tries every read and write of each resource by id.
	reach := func(t *testing.T, key string, ids map[string]string) {
		t.Helper()
		for _, c := range []struct{ method, path string }{
			{"GET", "/v1/customers/" + ids["customers"]}, {"PATCH", "/v1/customers/" + ids["customers"]}, {"PUT", "/v1/customers/" + ids["customers"]},
			{"GET", "/v1/bookings/" + ids["bookings"]}, {"PATCH", "/v1/bookings/" + ids["bookings"]}, {"POST", "/v1/bookings/" + ids["bookings"] + "/cancel"},
			{"GET", "/v1/payments/" + ids["payments"]}, {"POST", "/v1/payments/" + ids["payments"] + "/refund"},
			{"GET", "/v1/staff/" + ids["staff"]}, {"PUT", "/v1/staff/" + ids["staff"] + "/schedule"},
			{"GET", "/v1/webhooks/" + ids["webhooks"]}, {"GET", "/v1/webhooks/" + ids["webhooks"] + "/deliveries"}, {"DELETE", "/v1/webhooks/" + ids["webhooks"]},
		} {
			var body any
			switch c.method {
			case "PATCH", "PUT":
				body = map[string]any{"notes": "x"}
				if strings.HasSuffix(c.path, "/schedule") {
					body = map[string]any{"schedule": []any{}}
				}
			}
			r := s.do(c.method, c.path, key, body)
			assert.Contains(t, []int{404, 422}, r.status, "%s %s: %s", c.method, c.path, r.body)
			if r.status == 422 {
				// Only for bodies that fail validation before the lookup;
				// the resource itself must still be unreachable.
				continue
			}
			assert.NotContains(t, string(r.body), ids["customers"], "no data of the other tenant")
		}
		// And lists show none of it.
		for _, list := range []string{"/v1/customers", "/v1/bookings", "/v1/payments", "/v1/webhooks"} {
			r := s.do("GET", list, key, nil)
			require.Equal(t, 200, r.status)
			for _, id := range ids {
				assert.NotContains(t, string(r.body), id, "%s lists another tenant's %s", list, id)
			}
		}
	}

	t.Run("cross-organisation access by id is 404, never data (API1 BOLA)", func(t *testing.T) {
		admin(t, db, "org", "create", "--prefix", "other", "--name", "Other Ltd")
		all := "customers:read customers:write bookings:read bookings:write payments:read payments:write staff:read staff:write webhooks:read webhooks:write"
		for _, env := range []string{"test", "live"} {
			other := admin(t, db, "key", "create", "--org", "other", "--name", "x", "--scopes", all, "--env", env)["key"].(string)
			ids := testIDs
			if env == "live" {
				ids = liveIDs
			}
			reach(t, other, ids)
		}
		// Still there for their owner.
		assert.Equal(t, 200, s.do("GET", "/v1/webhooks/"+testIDs["webhooks"], testKey, nil).status)
		assert.Equal(t, "confirmed", s.do("GET", "/v1/bookings/"+testIDs["bookings"], testKey, nil).json(t)["status"])
	})

	t.Run("sandbox isolation: test keys never see live data, nor the reverse (API1)", func(t *testing.T) {
		reach(t, liveKey, testIDs)
		reach(t, testKey, liveIDs)
		// OAuth tokens act on live data only.
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"customers:read"}}
		req, _ := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(s.demo["OAuth client"], s.demo["client secret"])
		res, err := s.http.Do(req)
		require.NoError(t, err)
		var tok map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
		res.Body.Close()
		at := tok["access_token"].(string)
		assert.Equal(t, 404, s.do("GET", "/v1/customers/"+testIDs["customers"], at, nil).status)
		assert.Equal(t, 200, s.do("GET", "/v1/customers/"+liveIDs["customers"], at, nil).status)
	})

	t.Run("mass assignment: id, organisation, timestamps and status are refused with 422 (API3)", func(t *testing.T) {
		for _, field := range []string{"id", "organisation_id", "organisation", "created_at", "updated_at", "status", "environment"} {
			for path, body := range map[string]map[string]any{
				"/v1/customers": {"first_name": "A", "last_name": "B", "email": "a@example.com"},
				"/v1/bookings":  {"customer_id": testIDs["customers"], "service": "S", "starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:00:00Z"},
				"/v1/payments":  {"customer_id": testIDs["customers"], "amount": 1, "currency": "AUD"},
				"/v1/webhooks":  {"url": "https://93.184.215.14/in", "events": []string{"booking.*"}},
			} {
				b := map[string]any{field: "forged"}
				for k, v := range body {
					b[k] = v
				}
				r := s.do("POST", path, testKey, b)
				assert.Equal(t, 422, r.status, "POST %s with %s: %s", path, field, r.body)
			}
			r := s.do("PATCH", "/v1/bookings/"+testIDs["bookings"], testKey, map[string]any{field: "cancelled"})
			assert.Equal(t, 422, r.status, "PATCH a booking's %s", field)
		}
		assert.Equal(t, "confirmed", s.do("GET", "/v1/bookings/"+testIDs["bookings"], testKey, nil).json(t)["status"])
	})

	t.Run("SSRF: webhook URLs to loopback, private, link-local, metadata and mapped addresses are refused (API7)", func(t *testing.T) {
		for _, u := range []string{"http://127.0.0.2/", "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
			"http://[::1]/", "http://[::ffff:10.0.0.1]/", "http://0.0.0.0/", "http://[fd00::1]/", "http://100.64.0.1/", "http://metadata.google.internal/",
			"file:///etc/passwd", "gopher://127.0.0.2/", "http://user:pass@93.184.215.14/"} {
			r := s.do("POST", "/v1/webhooks", testKey, map[string]any{"url": u, "events": []string{"booking.*"}})
			assert.Equal(t, 422, r.status, "%s: %s", u, r.body)
		}
	})

	t.Run("oversized and malformed input is a 4xx in the envelope, never a 500 (API4, API8)", func(t *testing.T) {
		raw := func(method, path, ctype string, body []byte, hdr ...string) resp {
			req, _ := http.NewRequest(method, s.base+path, bytes.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			req.Header.Set("Authorization", "Bearer "+testKey)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			res, err := s.http.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return resp{res.StatusCode, res.Header, b}
		}
		for name, c := range map[string]struct {
			r    resp
			want int
		}{
			"1 MiB body":            {raw("POST", "/v1/customers", "application/json", bytes.Repeat([]byte(" "), 1<<20)), 413},
			"truncated JSON":        {raw("POST", "/v1/customers", "application/json", []byte(`{"first_name":`)), 400},
			"not JSON":              {raw("POST", "/v1/customers", "application/json", []byte(`<xml/>`)), 400},
			"two JSON values":       {raw("POST", "/v1/customers", "application/json", []byte(`{} {}`)), 400},
			"wrong type":            {raw("POST", "/v1/customers", "application/json", []byte(`{"first_name":7}`)), 400},
			"deep nesting":          {raw("POST", "/v1/customers", "application/json", []byte(strings.Repeat(`{"a":`, 20000)+"1"+strings.Repeat("}", 20000))), 0},
			"invalid UTF-8":         {raw("POST", "/v1/customers", "application/json", []byte("{\"first_name\":\"\xff\xfe\"}")), 0},
			"form body":             {raw("POST", "/v1/customers", "application/x-www-form-urlencoded", []byte(`first_name=a`)), 415},
			"malformed query":       {raw("GET", "/v1/customers?page=%zz", "", nil), 400},
			"negative page":         {raw("GET", "/v1/customers?page=-1", "", nil), 400},
			"huge page number":      {raw("GET", "/v1/customers?page=99999999999999999999", "", nil), 400},
			"long query string":     {raw("GET", "/v1/customers?x="+strings.Repeat("a", 7000), "", nil), 200},
			"malformed bearer":      {raw("GET", "/v1/customers", "", nil, "Authorization", "Bearer a b c"), 400},
			"unknown scheme":        {raw("GET", "/v1/customers", "", nil, "Authorization", "Digest x"), 401},
			"non-UUID id":           {raw("GET", "/v1/customers/../../etc/passwd", "", nil), 0},
			"NUL in path":           {raw("GET", "/v1/customers/%00", "", nil), 400},
			"XML wanted":            {raw("GET", "/v1/customers", "", nil, "Accept", "text/xml"), 406},
			"oversized bearer (8k)": {raw("GET", "/v1/customers", "", nil, "Authorization", "Bearer "+strings.Repeat("A", 8000)), 400},
		} {
			if c.want != 0 {
				assert.Equal(t, c.want, c.r.status, "%s: %s", name, truncate(c.r.body))
			}
			assert.True(t, c.r.status >= 200 && c.r.status < 500, "%s: %d %s", name, c.r.status, truncate(c.r.body))
			if c.r.status >= 400 {
				assert.Contains(t, string(c.r.body), `"error":{"code":`, "%s: not the envelope", name)
			}
		}
		assert.NotContains(t, s.logs(), "panic")
	})

	t.Run("token leakage: credentials never in error bodies, URLs of redirects or logs (RFC 9700 §4.3, API8)", func(t *testing.T) {
		// A different last character (a fixed one would equal the real key's
		// one time in 62).
		last := "X"
		if strings.HasSuffix(testKey, "X") {
			last = "Y"
		}
		forged := testKey[:len(testKey)-1] + last
		r := s.do("GET", "/v1/customers", forged, nil)
		assert.Equal(t, 401, r.status)
		assert.NotContains(t, string(r.body), forged)
		res, err := s.http.Get(s.base + "/v1/customers?access_token=" + url.QueryEscape(forged))
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.NotContains(t, string(b), forged)
		// The OAuth pages send no Referer to anyone.
		res, err = s.http.Get(s.base + "/oauth/authorize?response_type=code&client_id=" + s.demo["OAuth client"] + "&state=state-0123456789&redirect_uri=" + url.QueryEscape(s.demo["redirect URI"]) +
			"&code_challenge=" + oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()) + "&code_challenge_method=S256")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
		assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		for _, secret := range []string{testKey, liveKey, forged, s.demo["client secret"], password} {
			assert.NotContains(t, s.logs(), secret)
		}
		assert.Contains(t, s.logs(), "access_token=REDACTED")
	})

	t.Run("clickjacking: the sign-in, consent, dashboard and docs pages refuse framing (RFC 9700 §4.16)", func(t *testing.T) {
		for _, path := range []string{"/oauth/authorize?response_type=code&client_id=" + s.demo["OAuth client"] + "&state=state-0123456789&code_challenge=" +
			oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier()) + "&code_challenge_method=S256", "/dashboard/login", "/docs"} {
			res, err := s.http.Get(s.base + path)
			require.NoError(t, err)
			res.Body.Close()
			assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), path)
			assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		}
	})

	t.Run("PKCE downgrade: public clients must use S256, plain is refused (RFC 9700 §2.1.1)", func(t *testing.T) {
		pub := admin(t, db, "client", "create", "--org", "demo", "--name", "SPA", "--redirect-uri", "https://spa.example/cb", "--scopes", "bookings:read", "--public")
		base := s.base + "/oauth/authorize?response_type=code&client_id=" + pub["client_id"].(string) + "&state=state-0123456789&redirect_uri=" + url.QueryEscape("https://spa.example/cb")
		verifier := oauth2.GenerateVerifier()
		for name, q := range map[string]string{
			"no challenge":   "",
			"plain method":   "&code_challenge=" + verifier + "&code_challenge_method=plain",
			"default method": "&code_challenge=" + oauth2.S256ChallengeFromVerifier(verifier),
		} {
			status, loc, _ := fetchPage(t, s.browser(t), "GET", base+q, nil)
			assert.True(t, status == 400 || strings.Contains(loc, "error="), "%s: %d %s", name, status, loc)
			assert.NotContains(t, loc, "code=", name)
		}
		status, _, body := fetchPage(t, s.browser(t), "GET", base+"&code_challenge="+oauth2.S256ChallengeFromVerifier(verifier)+"&code_challenge_method=S256", nil)
		assert.Equal(t, 200, status, body)
	})

	t.Run("brute force: sign-in attempts are limited per account, guessed keys cost no lookup (API2, API4)", func(t *testing.T) {
		testenv.ClearOfMinuteBoundary(20 * time.Second) // 10 a minute: the attempts must share one window
		c := s.browser(t)
		statuses := map[int]int{}
		for range 12 {
			st, _, _ := fetchPage(t, c, "POST", s.base+"/dashboard/login", url.Values{"domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {"guess"}})
			statuses[st]++
		}
		assert.Equal(t, 10, statuses[401], "ten wrong passwords are answered")
		assert.Equal(t, 2, statuses[429], "then the account is blocked")
		st, _, body := fetchPage(t, c, "POST", s.base+"/dashboard/login", url.Values{"domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {password}})
		assert.Equal(t, 429, st, "even the right password waits: %s", truncate([]byte(body)))
		// The password grant shares the account's budget.
		form := url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"demo@example.com"}, "password": {password}}
		req, _ := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(s.demo["OAuth client"], s.demo["client secret"])
		res, err := s.http.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.NotEqual(t, 200, res.StatusCode, "blocked for the password grant too")
		// A guessed key fails its checksum: refused as malformed, and
		// counted as such.
		r := s.do("GET", "/v1/customers", "gate_test_"+strings.Repeat("A", 39), nil)
		assert.Equal(t, 401, r.status)
	})

	// Last: it spends this address's token-endpoint budget.
	t.Run("the token endpoint is limited per client address: 60 a minute (API4)", func(t *testing.T) {
		testenv.ClearOfMinuteBoundary(20 * time.Second)
		form := url.Values{"grant_type": {"client_credentials"}, "scope": {"customers:read"}}
		statuses := map[int]int{}
		var refused resp
		for range 70 {
			req, _ := http.NewRequest("POST", s.base+"/oauth/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(s.demo["OAuth client"], s.demo["client secret"])
			res, err := s.http.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			statuses[res.StatusCode]++
			if res.StatusCode == 429 {
				refused = resp{res.StatusCode, res.Header, b}
			}
		}
		assert.LessOrEqual(t, statuses[200], 60, "%v", statuses)
		assert.GreaterOrEqual(t, statuses[429], 10, "%v", statuses)
		assert.NotEmpty(t, refused.header.Get("Retry-After"))
		assert.Contains(t, string(refused.body), "RATE_LIMITED")
	})
}
