package main_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	newKeyRE      = regexp.MustCompile(`id="new-key-value">([^<]+)<`)
	newClientRE   = regexp.MustCompile(`id="new-client-id">([^<]+)<`)
	newSecretRE   = regexp.MustCompile(`id="new-client-secret">([^<]+)<`)
	keyRowRE      = regexp.MustCompile(`data-key-id="([^"]+)"><td>([^<]+)<`)
	deliveryRowRE = regexp.MustCompile(`action="(/dashboard/webhooks/[^"]+/redeliver)"`)
	testEventRE   = regexp.MustCompile(`action="(/dashboard/webhooks/[^"/]+/test)"`)
)

func signIn(t *testing.T, s *server, c *http.Client, prefix, email, password string) {
	t.Helper()
	status, at, body := fetchPage(t, c, "POST", s.base+"/dashboard/login", url.Values{"domain_prefix": {prefix}, "email": {email}, "password": {password}, "next": {"/dashboard/keys"}})
	require.Equal(t, 200, status, body)
	require.True(t, strings.HasSuffix(at, "/dashboard/keys"), "signed in to %s", at)
}

// formOf returns the text of the page's form that posts to action.
func formOf(body, action string) string {
	_, form, _ := strings.Cut(body, `action="`+action+`"`)
	form, _, _ = strings.Cut(form, "</form>")
	return form
}

func keyIDs(body string) map[string]string {
	ids := map[string]string{}
	for _, m := range keyRowRE.FindAllStringSubmatch(body, -1) {
		ids[m[2]] = m[1]
	}
	return ids
}

// TestDashboard drives the dashboard's forms over HTTP: sign-in and its
// failures, keys (create, shown once, rotate with grace, revoke),
// applications (create, delete), webhook redelivery, the explorer's
// sandbox key, other organisations' ids (404) and cross-origin posts
// (403).
func TestDashboard(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "gatehouse.db")
	s := start(t, db)
	password := strings.Fields(s.demo["user"])[2]
	c := s.browser(t)

	status, at, _ := fetchPage(t, c, "GET", s.base+"/dashboard/keys", nil)
	assert.Equal(t, 200, status)
	assert.Contains(t, at, "/dashboard/login?next=%2Fdashboard%2Fkeys", "signed out: to the sign-in page")
	status, _, body := fetchPage(t, c, "POST", s.base+"/dashboard/login", url.Values{"domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {"wrong"}})
	assert.Equal(t, 401, status)
	assert.Contains(t, body, "not right")
	status, at, _ = fetchPage(t, c, "POST", s.base+"/dashboard/login", url.Values{"domain_prefix": {"demo"}, "email": {"demo@example.com"}, "password": {password}, "next": {"https://evil.example/"}})
	assert.Equal(t, 200, status)
	assert.Equal(t, s.base+"/dashboard/keys", at, "next never leaves the dashboard")

	// Keys: validation, creation (shown once), use.
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys", url.Values{"name": {"Dash"}, "environment": {"test"}})
	assert.Equal(t, 422, status)
	assert.Contains(t, body, "Choose at least one scope")
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys", url.Values{"name": {"Dash"}, "environment": {"test"}, "scope": {"customers:reed"}})
	assert.Equal(t, 422, status)
	assert.Contains(t, body, "The scopes must all be known; unknown: customers:reed.", "a sentence, not a Go error chain")
	for _, bad := range []string{"Dash\x00", "Dash\xff"} {
		status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys", url.Values{"name": {bad}, "environment": {"test"}, "scope": {"customers:read"}})
		assert.Equal(t, 400, status, "%q", bad)
		assert.Contains(t, body, "The form has text that cannot be saved", "%q", bad)
	}
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys", url.Values{"name": {"Dash"}, "environment": {"test"}, "scope": {"customers:read"}, "expires": {"30d"}})
	require.Equal(t, 200, status, body)
	key := newKeyRE.FindStringSubmatch(body)[1]
	assert.Equal(t, 200, s.do("GET", "/v1/customers", key, nil).status)
	_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/keys", nil)
	assert.NotContains(t, body, key, "shown once")
	dashID := keyIDs(body)["Dash"]
	require.NotEmpty(t, dashID)

	// Rotate: a new key at once, the old one for the grace period.
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+dashID+"/rotate", url.Values{})
	require.Equal(t, 200, status, body)
	rotated := newKeyRE.FindStringSubmatch(body)[1]
	assert.NotEqual(t, key, rotated)
	assert.Equal(t, 200, s.do("GET", "/v1/customers", rotated, nil).status)
	assert.Equal(t, 200, s.do("GET", "/v1/customers", key, nil).status, "the old key works during the grace period")
	// Pressed again: the key rotated already, said on the page (no 500, no second new key).
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+dashID+"/rotate", url.Values{})
	assert.Less(t, status, 500, body)
	assert.Contains(t, body, "was rotated already")
	assert.Nil(t, newKeyRE.FindStringSubmatch(body), "no second new key")

	// Revoke the original: it stops at once.
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+dashID+"/revoke", url.Values{})
	assert.Equal(t, 200, status)
	require.Eventually(t, func() bool { return s.do("GET", "/v1/customers", key, nil).status == 401 }, 10*time.Second, 100*time.Millisecond)
	assert.Equal(t, 200, s.do("GET", "/v1/customers", rotated, nil).status)
	_, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+dashID+"/update", url.Values{"name": {"Dash"}, "scope": {"payments:read"}})
	assert.Contains(t, body, "The key is revoked: it cannot be changed.")

	// Edit a key's name and scopes: a scope taken away stops at once. The
	// page shows where the key was last used from.
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys", url.Values{"name": {"Editable"}, "environment": {"test"}, "scope": {"customers:read"}, "expires": {""}})
	require.Equal(t, 200, status, body)
	editable := newKeyRE.FindStringSubmatch(body)[1]
	require.Equal(t, 200, s.do("GET", "/v1/customers", editable, nil).status)
	editID := keyIDs(body)["Editable"]
	require.NotEmpty(t, editID)
	assert.Contains(t, formOf(body, "/dashboard/keys/"+editID+"/update"), `name="scope" value="customers:read" checked`, "the edit form ticks its scope")
	require.Eventually(t, func() bool {
		_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/keys", nil)
		return strings.Contains(body, "<code>127.0.0.1</code>")
	}, 15*time.Second, 100*time.Millisecond, "where the key was last used from")
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+editID+"/update", url.Values{"name": {"Edited"}, "scope": {"payments:read"}})
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, "Key Edited updated")
	assert.Equal(t, 403, s.do("GET", "/v1/customers", editable, nil).status, "customers:read, taken away, stops at once")
	assert.Equal(t, 200, s.do("GET", "/v1/payments", editable, nil).status)
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+editID+"/update", url.Values{"name": {"Edited"}})
	assert.Equal(t, 422, status, "no scope")
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/keys/"+editID+"/update", url.Values{"name": {"Edited"}, "scope": {"nope:read"}})
	assert.Equal(t, 422, status, "an unknown scope")

	// Cross-origin posts are refused before they act.
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/keys", url.Values{"name": {"x"}, "environment": {"test"}, "scope": {"customers:read"}},
		"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, 403, status)

	// Applications.
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/apps", url.Values{"name": {"SPA"}, "type": {"public"}, "redirect_uris": {"https://spa.example/cb\n"},
		"grant": {"authorization_code"}, "scope": {"bookings:read"}})
	require.Equal(t, 200, status, body)
	spaID := newClientRE.FindStringSubmatch(body)[1]
	assert.Nil(t, newSecretRE.FindStringSubmatch(body), "a public client has no secret")
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/apps", url.Values{"name": {"Bad"}, "type": {"confidential"}, "redirect_uris": {"http://app.example/cb"},
		"grant": {"authorization_code"}, "scope": {"bookings:read"}})
	assert.Equal(t, 422, status, "plain http off loopback")
	assert.Contains(t, body, "redirect")
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/apps", url.Values{"name": {"Server"}, "type": {"confidential"}, "redirect_uris": {"https://app.example/cb"},
		"grant": {"client_credentials"}, "scope": {"bookings:read"}})
	require.Equal(t, 200, status, body)
	serverID, serverSecret := newClientRE.FindStringSubmatch(body)[1], newSecretRE.FindStringSubmatch(body)[1]
	res, err := http.PostForm(s.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {serverID}, "client_secret": {serverSecret}})
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	// Rotating its secret shows a new one once; the old one still works.
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/apps/"+serverID+"/rotate", url.Values{})
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, "The previous secret keeps working until")
	newSecret := newSecretRE.FindStringSubmatch(body)[1]
	assert.NotEqual(t, serverSecret, newSecret)
	for _, secret := range []string{newSecret, serverSecret} {
		res, err := http.PostForm(s.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {serverID}, "client_secret": {secret}})
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 200, res.StatusCode)
	}
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/apps/"+spaID+"/rotate", url.Values{})
	assert.Equal(t, 400, status, "a public application has no secret")
	// Editing it: its edit form shows what it has; a scope taken away
	// stops in the token it holds.
	_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/apps", nil)
	form := formOf(body, "/dashboard/apps/"+serverID+"/update")
	assert.Contains(t, form, `name="scope" value="bookings:read" checked`, "the edit form ticks its scope")
	assert.NotContains(t, form, `name="scope" value="customers:read" checked`)
	assert.Contains(t, form, `name="grant" value="client_credentials" checked`)
	assert.Contains(t, form, "https://app.example/cb</textarea>")
	res, err = http.PostForm(s.base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {serverID}, "client_secret": {newSecret}, "scope": {"bookings:read"}})
	require.NoError(t, err)
	var tok map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	res.Body.Close()
	serverToken := tok["access_token"].(string)
	require.Equal(t, 200, s.do("GET", "/v1/bookings", serverToken, nil).status)
	edit := url.Values{"name": {"Server v2"}, "redirect_uris": {"https://app.example/v2/cb\n"}, "grant": {"client_credentials"}, "scope": {"customers:read"}}
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/apps/"+serverID+"/update", edit)
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, "Application Server v2 updated")
	assert.Contains(t, body, "https://app.example/v2/cb")
	assert.Equal(t, 403, s.do("GET", "/v1/bookings", serverToken, nil).status, "bookings:read, taken away, stops in its token at once")
	bad := url.Values{"name": {"Server v2"}, "redirect_uris": {"http://app.example/cb"}, "grant": {"authorization_code"}, "scope": {"customers:read"}}
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/apps/"+serverID+"/update", bad)
	assert.Equal(t, 422, status)
	assert.Contains(t, body, "must use https")
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/apps/"+serverID+"/update", url.Values{"name": {"x"}, "grant": {"client_credentials"}})
	assert.Equal(t, 422, status, "no scope")

	// The user's own authorized applications: the demo application, once
	// it holds the user's token; disconnecting it ends the token at once.
	userToken := s.passwordToken(t)
	require.Equal(t, 200, s.do("GET", "/v1/contacts/me", userToken, nil).status)
	_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/apps", nil)
	assert.Contains(t, body, `data-connected-id="`+s.demo["OAuth client"]+`"`)
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/connected/"+s.demo["OAuth client"]+"/disconnect", url.Values{})
	require.Equal(t, 200, status, body)
	assert.NotContains(t, body, `data-connected-id="`+s.demo["OAuth client"]+`"`, "no longer listed")
	assert.Contains(t, body, "You have not authorized any application")
	assert.Equal(t, 401, s.do("GET", "/v1/contacts/me", userToken, nil).status, "its token ends at once")

	// Another organisation's user sees none of it.
	admin(t, db, "org", "create", "--prefix", "acme", "--name", "Acme")
	admin(t, db, "user", "create", "--org", "acme", "--email", "eve@acme.test", "--password", "eve's long password")
	eve := s.browser(t)
	signIn(t, s, eve, "acme", "eve@acme.test", "eve's long password")
	_, _, body = fetchPage(t, eve, "GET", s.base+"/dashboard/keys", nil)
	assert.NotContains(t, body, "Dash")
	status, _, _ = fetchPage(t, eve, "POST", s.base+"/dashboard/keys/"+editID+"/update", url.Values{"name": {"Eve's"}, "scope": {"customers:read"}})
	assert.Equal(t, 404, status, "eve editing demo's key")
	status, _, _ = fetchPage(t, eve, "POST", s.base+"/dashboard/keys/"+keyIDs(body)["Dash"]+"/revoke", url.Values{})
	assert.Equal(t, 404, status)
	_, _, demoKeys := fetchPage(t, c, "GET", s.base+"/dashboard/keys", nil)
	for name, id := range keyIDs(demoKeys) {
		status, _, _ = fetchPage(t, eve, "POST", s.base+"/dashboard/keys/"+id+"/revoke", url.Values{})
		assert.Equal(t, 404, status, "eve revoking demo's %q", name)
	}
	assert.Equal(t, 200, s.do("GET", "/v1/customers", rotated, nil).status)
	status, _, _ = fetchPage(t, eve, "POST", s.base+"/dashboard/apps/"+spaID+"/delete", url.Values{})
	assert.Equal(t, 404, status)
	status, _, _ = fetchPage(t, eve, "POST", s.base+"/dashboard/apps/"+serverID+"/rotate", url.Values{})
	assert.Equal(t, 404, status, "eve rotating demo's application")
	status, _, _ = fetchPage(t, eve, "POST", s.base+"/dashboard/apps/"+serverID+"/update", edit)
	assert.Equal(t, 404, status, "eve editing demo's application")
	status, _, _ = fetchPage(t, c, "POST", s.base+"/dashboard/apps/"+spaID+"/delete", url.Values{})
	assert.Equal(t, 200, status)
	_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/apps", nil)
	assert.NotContains(t, body, spaID)

	// Webhooks: a delivery that failed is redelivered from the page.
	rcv := newCallback(t)
	r := s.do("POST", "/v1/webhooks", s.demo["test API key (sandbox)"], map[string]any{"url": rcv.url, "events": []string{"customer.created"}})
	require.Equal(t, 201, r.status, string(r.body))
	require.Equal(t, 201, s.do("POST", "/v1/customers", s.demo["test API key (sandbox)"], map[string]any{"first_name": "W", "last_name": "H", "email": "w@example.com"}).status)
	var redeliver string
	require.Eventually(t, func() bool {
		_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/webhooks", nil)
		m := deliveryRowRE.FindStringSubmatch(body)
		if m != nil {
			redeliver = m[1]
		}
		return m != nil && strings.Contains(body, "delivered")
	}, 15*time.Second, 100*time.Millisecond)
	status, at, body = fetchPage(t, c, "POST", s.base+redeliver, url.Values{})
	assert.Equal(t, 200, status)
	assert.Contains(t, at, "notice=redelivery")
	assert.Contains(t, body, "Redelivery queued")
	status, _, _ = fetchPage(t, eve, "POST", s.base+redeliver, url.Values{})
	assert.Equal(t, 404, status)
	// And a test event is sent from it, to this subscription alone.
	m := testEventRE.FindStringSubmatch(body)
	require.NotNil(t, m, "a Send test event button")
	status, at, body = fetchPage(t, c, "POST", s.base+m[1], url.Values{})
	assert.Equal(t, 200, status)
	assert.Contains(t, at, "notice=test")
	assert.Contains(t, body, "Test event queued")
	require.Eventually(t, func() bool {
		_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/webhooks", nil)
		return strings.Contains(body, "<code>webhook.test</code></td><td>delivered")
	}, 15*time.Second, 100*time.Millisecond, "the test event delivered, listed with the subscription's deliveries")
	status, _, _ = fetchPage(t, eve, "POST", s.base+m[1], url.Values{})
	assert.Equal(t, 404, status, "another organisation's user")
	// Disabled (here by its owner, through the API), it is enabled again from the page.
	hookID := r.json(t)["id"].(string)
	require.Equal(t, 200, s.do("PATCH", "/v1/webhooks/"+hookID, s.demo["test API key (sandbox)"], map[string]any{"enabled": false}).status)
	_, _, body = fetchPage(t, c, "GET", s.base+"/dashboard/webhooks", nil)
	assert.Contains(t, body, "disabled: disabled by its owner")
	enable := "/dashboard/webhooks/" + hookID + "/enable"
	require.Contains(t, body, `action="`+enable+`"`, "an Enable again button")
	status, _, _ = fetchPage(t, eve, "POST", s.base+enable, url.Values{})
	assert.Equal(t, 404, status, "another organisation's user")
	status, at, body = fetchPage(t, c, "POST", s.base+enable, url.Values{})
	assert.Equal(t, 200, status)
	assert.Contains(t, at, "notice=enabled")
	assert.Contains(t, body, "Subscription enabled again")
	assert.Equal(t, true, s.do("GET", "/v1/webhooks/"+hookID, s.demo["test API key (sandbox)"], nil).json(t)["enabled"])

	// The explorer's sandbox key: one hour, test environment, JSON.
	status, _, body = fetchPage(t, c, "POST", s.base+"/dashboard/explorer-key", url.Values{})
	require.Equal(t, 201, status, body)
	var ek map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &ek))
	assert.True(t, strings.HasPrefix(ek["key"], "gate_test_"))
	assert.Equal(t, 200, s.do("GET", "/v1/contacts/me", ek["key"], nil).status)

	// Security headers of the pages, then sign out.
	res, err = c.Get(s.base + "/dashboard/keys")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'")
	assert.NotContains(t, res.Header.Get("Content-Security-Policy"), "unsafe-inline")
	base, _ := url.Parse(s.base)
	stolen := c.Jar.Cookies(base)
	status, at, _ = fetchPage(t, c, "POST", s.base+"/dashboard/logout", url.Values{})
	assert.Equal(t, 200, status)
	assert.Contains(t, at, "/dashboard/login")
	_, at, _ = fetchPage(t, c, "GET", s.base+"/dashboard/apps", nil)
	assert.Contains(t, at, "/dashboard/login")
	// Sessions are server-side: a copy of the cookie taken before signing
	// out no longer works.
	thief := s.browser(t)
	thief.Jar.SetCookies(base, stolen)
	_, at, _ = fetchPage(t, thief, "GET", s.base+"/dashboard/apps", nil)
	assert.Contains(t, at, "/dashboard/login", "a signed-out session's cookie still works")
	assert.NotContains(t, s.logs(), serverSecret)
	assert.NotContains(t, s.logs(), rotated)
}
