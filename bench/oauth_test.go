package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	"github.com/go-oauth2/oauth2/v4/store"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

func tokenRequest(form url.Values, id, secret string) *http.Request {
	req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	req.RemoteAddr = "192.0.2.1:1234"
	return req
}

func serve(b *testing.B, h http.Handler, mk func() *http.Request) {
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, mk())
		if rec.Code != 200 {
			b.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
}

var (
	ccForm = url.Values{"grant_type": {"client_credentials"}, "scope": {"staff:read"}}
	pwForm = url.Values{"grant_type": {"password"}, "domain_prefix": {"demo"}, "username": {"ada@example.com"}, "password": {"correct horse battery"}, "scope": {"staff:read"}}
)

// gatehouseProvider has one confidential client and one user; the
// password uses argon2id with OWASP's parameters.
func gatehouseProvider(b *testing.B) (http.Handler, string, string) {
	ctx := context.Background()
	s := memory.New()
	p, err := oauth.New(s, oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32),
		LoginAttempts: nil, LoginAttemptsPerIP: nil})
	if err != nil {
		b.Fatal(err)
	}
	org := &storage.Organisation{ID: storage.NewID(), DomainPrefix: "demo", Name: "Demo", Plan: "standard", CreatedAt: time.Now()}
	_ = s.CreateOrganisation(ctx, org)
	if _, err := p.CreateUser(ctx, oauth.UserParams{OrganisationID: org.ID, Email: "ada@example.com", Password: "correct horse battery"}); err != nil {
		b.Fatal(err)
	}
	secret, c, err := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: org.ID, Name: "bench", Grants: []string{"client_credentials", "password"}, Scopes: []string{"staff:read"}})
	if err != nil {
		b.Fatal(err)
	}
	return p.TokenHandler(), c.ID, secret
}

func fositeDefaults(b *testing.B) http.Handler {
	cfg := &fosite.Config{GlobalSecret: make([]byte, 32), AccessTokenLifespan: time.Hour}
	st := fositestorage.NewMemoryStore()
	hash, _ := cfg.GetSecretsHasher(context.Background()).Hash(context.Background(), []byte("secret"))
	st.Clients["cc"] = &fosite.DefaultClient{ID: "cc", Secret: hash, GrantTypes: []string{"client_credentials", "password"}, Scopes: []string{"staff:read"}}
	st.Users["ada@example.com"] = fositestorage.MemoryUserRelation{Username: "ada@example.com", Password: "correct horse battery"}
	p := compose.ComposeAllEnabled(cfg, st, nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := p.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
		if err != nil {
			p.WriteAccessError(ctx, w, ar, err)
			return
		}
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		resp, err := p.NewAccessResponse(ctx, ar)
		if err != nil {
			p.WriteAccessError(ctx, w, ar, err)
			return
		}
		p.WriteAccessResponse(ctx, w, ar, resp)
	})
}

func goOAuth2() http.Handler {
	srv := goOAuth2Server()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = srv.HandleTokenRequest(w, r) })
}

func goOAuth2Server() *server.Server {
	m := manage.NewDefaultManager()
	m.MustTokenStorage(store.NewMemoryTokenStore())
	cs := store.NewClientStore()
	_ = cs.Set("cc", &models.Client{ID: "cc", Secret: "secret", Domain: "http://127.0.0.1"})
	m.MapClientStorage(cs)
	srv := server.NewDefaultServer(m)
	srv.SetClientInfoHandler(server.ClientBasicHandler)
	srv.SetPasswordAuthorizationHandler(func(_ context.Context, _, username, password string) (string, error) {
		if username == "ada@example.com" && password == "correct horse battery" {
			return "ada", nil
		}
		return "", nil
	})
	return srv
}

// BenchmarkTokenClientCredentials: one client-credentials token per op,
// HTTP Basic client authentication, memory stores.
func BenchmarkTokenClientCredentials(b *testing.B) {
	b.Run("gatehouse", func(b *testing.B) {
		h, id, secret := gatehouseProvider(b)
		serve(b, h, func() *http.Request { return tokenRequest(ccForm, id, secret) })
	})
	b.Run("fosite-defaults", func(b *testing.B) {
		h := fositeDefaults(b)
		serve(b, h, func() *http.Request { return tokenRequest(ccForm, "cc", "secret") })
	})
	b.Run("go-oauth2", func(b *testing.B) {
		h := goOAuth2()
		serve(b, h, func() *http.Request {
			return tokenRequest(url.Values{"grant_type": {"client_credentials"}}, "cc", "secret")
		})
	})
}

// BenchmarkTokenPassword: one password-grant token per op. Gatehouse checks
// an argon2id hash (OWASP parameters); fosite's memory store and go-oauth2's
// handler here compare plaintext passwords, which no real deployment does.
func BenchmarkTokenPassword(b *testing.B) {
	b.Run("gatehouse-argon2id", func(b *testing.B) {
		h, id, secret := gatehouseProvider(b)
		serve(b, h, func() *http.Request { return tokenRequest(pwForm, id, secret) })
	})
	b.Run("fosite-defaults-plaintext-user", func(b *testing.B) {
		h := fositeDefaults(b)
		serve(b, h, func() *http.Request { return tokenRequest(pwForm, "cc", "secret") })
	})
	b.Run("go-oauth2-plaintext-user", func(b *testing.B) {
		h := goOAuth2()
		serve(b, h, func() *http.Request { return tokenRequest(pwForm, "cc", "secret") })
	})
}

// BenchmarkBearerValidation: validating one access token per op on the
// resource side. Gatehouse warm is its cached path; cold reads the store
// every time (fosite's introspection underneath); fosite and go-oauth2
// read their memory stores every time.
func BenchmarkBearerValidation(b *testing.B) {
	issueWith := func(b *testing.B, h http.Handler, form url.Values, id, secret string) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, tokenRequest(form, id, secret))
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
		body := rec.Body.String()
		i := strings.Index(body, `"access_token":"`) + len(`"access_token":"`)
		return body[i : i+strings.Index(body[i:], `"`)]
	}
	bearer := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", "/v1/contacts/me", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"gatehouse-warm", 5 * time.Second}, {"gatehouse-cold", time.Nanosecond}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			s := memory.New()
			p, _ := oauth.New(s, oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32)})
			secret, c, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "o", Name: "b", Grants: []string{"client_credentials"}, Scopes: []string{"staff:read"}})
			tok := issueWith(b, p.TokenHandler(), ccForm, c.ID, secret)
			a := p.Authenticator(oauth.ResourceConfig{CacheTTL: tc.ttl})
			req := bearer(tok)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authenticate(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("fosite-defaults", func(b *testing.B) {
		cfg := &fosite.Config{GlobalSecret: make([]byte, 32), AccessTokenLifespan: time.Hour}
		st := fositestorage.NewMemoryStore()
		hash, _ := cfg.GetSecretsHasher(context.Background()).Hash(context.Background(), []byte("secret"))
		st.Clients["cc"] = &fosite.DefaultClient{ID: "cc", Secret: hash, GrantTypes: []string{"client_credentials"}, Scopes: []string{"staff:read"}}
		p := compose.ComposeAllEnabled(cfg, st, nil)
		// Issue against this provider's own store so that it can validate.
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ar, err := p.NewAccessRequest(r.Context(), r, &fosite.DefaultSession{})
			if err != nil {
				p.WriteAccessError(r.Context(), w, ar, err)
				return
			}
			ar.GrantScope("staff:read")
			resp, _ := p.NewAccessResponse(r.Context(), ar)
			p.WriteAccessResponse(r.Context(), w, ar, resp)
		})
		tok := issueWith(b, h, ccForm, "cc", "secret")
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := p.IntrospectToken(ctx, tok, fosite.AccessToken, &fosite.DefaultSession{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go-oauth2", func(b *testing.B) {
		srv := goOAuth2Server()
		tok := issueWith(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _ = srv.HandleTokenRequest(w, r) }),
			url.Values{"grant_type": {"client_credentials"}}, "cc", "secret")
		req := bearer(tok)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := srv.ValidationBearerToken(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
