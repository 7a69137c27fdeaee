package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/scope"
)

// FuzzRefreshScope refreshes a fresh grant of bookings:write and
// customers:read with any scope parameter. The answer is never a 5xx; a
// scope beyond the grant is invalid_scope, and a refusal spends nothing
// (the refresh token still works); a success never widens the grant: the
// new access token has the scope asked for (the grant's when none was),
// and the new refresh token the grant's whole scope (RFC 6749 §6).
func FuzzRefreshScope(f *testing.F) {
	ctx := context.Background()
	store, org := fuzzStore(f)
	p := fuzzProvider(f, store, func(*oauth.Config) {})
	if _, err := p.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "ada@example.com", Password: "correct horse battery"}); err != nil {
		f.Fatal(err)
	}
	secret, c, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "App", Grants: []string{"password", "refresh_token"},
		Scopes: []string{"bookings:write", "customers:read", "payments:read"}})
	if err != nil {
		f.Fatal(err)
	}
	h := p.Handler()
	post := func(t *testing.T, path string, form url.Values) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(c.ID, secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code >= 500 {
			t.Fatalf("%s %v: %d %s", path, form, rec.Code, rec.Body)
		}
		return rec.Code, body
	}
	catalog := scope.DefaultCatalog()
	whole := []string{"bookings:write", "customers:read"}
	for _, s := range []string{"", "bookings:read", "bookings:write", "customers:read bookings:read", "payments:read", "bookings:*", "staff:write",
		"bookings:read bookings:read", "  bookings:read  ", "bookings:read\x00", "b\xffookings:read", strings.Repeat("bookings:read ", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, asked string) {
		status, body := post(t, "/oauth/token", url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"},
			"password": {"correct horse battery"}, "scope": {strings.Join(whole, " ")}})
		if status != http.StatusOK {
			t.Fatalf("sign-in: %d %v", status, body)
		}
		rt := body["refresh_token"].(string)
		status, body = post(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {asked}})
		// The scope's tokens as the token endpoint reads them: split on
		// spaces (RFC 6749 §3.3), each trimmed of white space, as fosite
		// does for every grant.
		tokens := fosite.RemoveEmpty(strings.Split(asked, " "))
		if _, beyond := catalog.Narrow(tokens, whole); len(beyond) > 0 && (status != http.StatusBadRequest || body["error"] != "invalid_scope") {
			t.Fatalf("scope %q asks for %v beyond the grant: %d %v, not invalid_scope", asked, beyond, status, body)
		}
		if status != http.StatusOK {
			if again, b := post(t, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); again != http.StatusOK {
				t.Fatalf("scope %q was refused (%d %v) and spent the refresh token: %d %v", asked, status, body, again, b)
			}
			return
		}
		got, _ := body["scope"].(string)
		if _, beyond := catalog.Narrow(strings.Fields(got), whole); len(beyond) > 0 {
			t.Fatalf("scope %q got %q: beyond the grant %v", asked, got, beyond)
		}
		want := tokens // what was asked, or all of the grant when nothing was
		if len(want) == 0 {
			want = whole
		}
		if set := func(v []string) []string { return slices.Compact(slices.Sorted(slices.Values(v))) }; !slices.Equal(set(strings.Fields(got)), set(want)) {
			t.Fatalf("scope %q got %q, not %v", asked, got, want)
		}
		_, in := post(t, "/oauth/introspect", url.Values{"token": {body["refresh_token"].(string)}})
		if s, _ := in["scope"].(string); !slices.Equal(strings.Fields(s), whole) {
			t.Fatalf("scope %q: the new refresh token has %q, not the grant's %v", asked, s, whole)
		}
	})
}
