package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

func ccRequest(id, secret string) *http.Request {
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return req
}

// BenchmarkTokenClientCredentials measures one client-credentials token
// request through the handler (SHA-256 client secrets, memory store). The
// peers (fosite with its defaults, go-oauth2) are measured beside it in the
// bench/ module.
func BenchmarkTokenClientCredentials(b *testing.B) {
	b.Run("gatehouse", func(b *testing.B) {
		s := memory.New()
		p, err := oauth.New(s, oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32)})
		if err != nil {
			b.Fatal(err)
		}
		secret, c, err := p.RegisterClient(context.Background(), oauth.ClientParams{OrganisationID: "o", Name: "cc", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read"}})
		if err != nil {
			b.Fatal(err)
		}
		h := p.TokenHandler()
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, ccRequest(c.ID, secret))
			if rec.Code != 200 {
				b.Fatal(rec.Body.String())
			}
		}
	})
}

// BenchmarkBearerValidation measures the resource-server authenticator on
// a cached (warm) token and on a cold one (a store read per call).
func BenchmarkBearerValidation(b *testing.B) {
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"warm", 5 * time.Second}, {"cold", time.Nanosecond}} {
		b.Run(tc.name, func(b *testing.B) {
			s := memory.New()
			p, _ := oauth.New(s, oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32)})
			secret, c, _ := p.RegisterClient(context.Background(), oauth.ClientParams{OrganisationID: "o", Name: "cc", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read"}})
			rec := httptest.NewRecorder()
			p.TokenHandler().ServeHTTP(rec, ccRequest(c.ID, secret))
			tok := between(rec.Body.String(), `"access_token":"`, `"`)
			a := p.Authenticator(oauth.ResourceConfig{CacheTTL: tc.ttl})
			req := httptest.NewRequest("GET", "/v1/contacts/me", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			var pr *gatehouse.Principal
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if pr, err = a.Authenticate(req); err != nil {
					b.Fatal(err)
				}
			}
			_ = pr
			_ = storage.NoExpiry
		})
	}
}

func between(s, a, z string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	return s[:strings.Index(s, z)]
}
