package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// fuzzApp builds the real handler on a temporary SQLite database.
func fuzzApp(f *testing.F) (http.Handler, *demoCredentials) {
	ctx := context.Background()
	store, err := openStore(ctx, "sqlite:"+filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	big := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	a, err := newApp(ctx, store, appConfig{Issuer: "http://127.0.0.1:8080", Secret: make([]byte, 32), Limiter: big, Logger: slog.New(slog.DiscardHandler), Insecure: true})
	if err != nil {
		f.Fatal(err)
	}
	demo, err := a.seedDemo(ctx, "http://127.0.0.1:8080/callback")
	if err != nil {
		f.Fatal(err)
	}
	h, err := a.handler()
	if err != nil {
		f.Fatal(err)
	}
	return h, demo
}

// FuzzAPIBodies posts arbitrary bodies to every endpoint that takes one:
// the answer is a 2xx or a 4xx in the envelope, never a 5xx or a panic.
func FuzzAPIBodies(f *testing.F) {
	h, demo := fuzzApp(f)
	for _, s := range []string{`{"first_name":"A","last_name":"B","email":"a@b.co"}`, `{"customer_id":"x","service":"s","starts_at":"2026-01-01T00:00:00Z","ends_at":"2025-01-01T00:00:00Z"}`,
		`{"amount":-1,"currency":"aud"}`, `{"url":"http://127.0.0.1/","events":["*"]}`, `{"schedule":[{"day":"monday","start":"09:00","end":"08:00"}]}`,
		`[]`, `null`, `{"id":1}`, `{"first_name":{"a":1}}`, "\x00", `{"email":"` + strings.Repeat("a", 300) + `"}`} {
		for i := range 5 {
			f.Add(i, s)
		}
	}
	paths := []string{"/v1/customers", "/v1/bookings", "/v1/payments", "/v1/webhooks", "/v1/staff/00000000-0000-7000-8000-000000000000/schedule"}
	f.Fuzz(func(t *testing.T, which int, body string) {
		path := paths[(which%len(paths)+len(paths))%len(paths)]
		method := "POST"
		if strings.HasSuffix(path, "/schedule") {
			method = "PUT"
		}
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+demo.TestKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body.String())
		}
	})
}

// FuzzTokenForm sends arbitrary password-grant forms (domain_prefix and
// username among them) to the token endpoint: never a 5xx or a panic.
func FuzzTokenForm(f *testing.F) {
	h, demo := fuzzApp(f)
	f.Add("demo", "demo@example.com", demo.Password)
	f.Add("", "x", "y")
	f.Add("DEMO", "Demo@Example.com", "wrong")
	f.Add("de\x00mo", "%%%", "\xff")
	f.Add(strings.Repeat("a", 5000), "a@b", "c")
	f.Fuzz(func(t *testing.T, prefix, user, pass string) {
		form := url.Values{"grant_type": {"password"}, "domain_prefix": {prefix}, "username": {user}, "password": {pass},
			"client_id": {demo.ClientID}, "client_secret": {demo.ClientSecret}}
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.1:1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q %q: %d %s", prefix, user, rec.Code, rec.Body.String())
		}
	})
}
