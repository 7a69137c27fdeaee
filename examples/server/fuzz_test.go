package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// FuzzStoreEnv set to "postgres" makes the fuzz targets run on a
// PostgreSQL schema of their own (testenv.PostgresSchema) rather than on
// SQLite: slower, and the way to find what only PostgreSQL refuses.
const FuzzStoreEnv = "GATEHOUSE_FUZZ_STORE"

// fuzzApp builds the real handler on a temporary SQLite database, or
// PostgreSQL with GATEHOUSE_FUZZ_STORE=postgres.
func fuzzApp(f *testing.F) (http.Handler, *demoCredentials) {
	ctx := context.Background()
	db := "sqlite:" + filepath.Join(f.TempDir(), "fuzz.db")
	if os.Getenv(FuzzStoreEnv) == "postgres" {
		db = testenv.PostgresSchema(f, "fuzz_")
	}
	store, err := openStore(ctx, db, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	big := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	a, err := newApp(ctx, store, appConfig{Issuer: "http://127.0.0.1:8080", Secret: make([]byte, 32), Limiter: big, Logger: slog.New(slog.DiscardHandler), Insecure: true,
		PasswordParams: oauth.PasswordParams{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		f.Fatal(err)
	}
	demo, err := a.seedDemo(ctx, "http://127.0.0.1:8080/callback")
	if err != nil {
		f.Fatal(err)
	}
	// The demo key's plan allows 100 requests a minute: past them every
	// input would meet the same 429 and the fuzzer would test nothing
	// else. A key of the demo's, with every scope and a limit no run
	// reaches, takes its place.
	org, err := store.GetOrganisationByPrefix(ctx, "demo")
	if err != nil {
		f.Fatal(err)
	}
	var all []string
	for _, s := range a.catalog.Scopes() {
		all = append(all, s.Name)
	}
	key, _, err := a.keys.Create(ctx, apikey.CreateParams{OrganisationID: org.ID, Name: "fuzz", Scopes: all, Environment: gatehouse.Test, RateLimit: "1000000000/h,1000000000/m"})
	if err != nil {
		f.Fatal(err)
	}
	demo.TestKey = key.Reveal()
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
		`[]`, `null`, `{"id":1}`, `{"first_name":{"a":1}}`, "\x00", `{"email":"` + strings.Repeat("a", 300) + `"}`,
		`{"events":[],"enabled":false}`, `{"url":"https://93.184.215.14/b","enabled":true}`, `{"secret":"webhook_secret_for_verification"}`} {
		for i := range 8 {
			f.Add(i, s)
		}
	}
	// A subscription and one of the sandbox's customers, to change.
	call := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+demo.TestKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	var made struct{ ID string }
	var customers []struct{ ID string }
	rec := call("POST", "/v1/webhooks", `{"url":"https://93.184.215.14/hooks","events":["*"]}`)
	if err := json.Unmarshal(rec.Body.Bytes(), &made); err != nil || rec.Code != http.StatusCreated {
		f.Fatalf("a subscription to fuzz: %d %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(call("GET", "/v1/customers", "").Body.Bytes(), &customers); err != nil || len(customers) == 0 {
		f.Fatalf("the sandbox's customers: %v", err)
	}
	paths := [][2]string{{"POST", "/v1/customers"}, {"POST", "/v1/bookings"}, {"POST", "/v1/payments"}, {"POST", "/v1/webhooks"},
		{"PUT", "/v1/staff/00000000-0000-7000-8000-000000000000/schedule"}, {"PATCH", "/v1/customers/" + customers[0].ID},
		{"PATCH", "/v1/webhooks/" + made.ID}, {"POST", "/v1/webhooks/" + made.ID + "/rotate-secret"}}
	f.Fuzz(func(t *testing.T, which int, body string) {
		mp := paths[(which%len(paths)+len(paths))%len(paths)]
		method, path := mp[0], mp[1]
		rec := call(method, path, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusTooManyRequests {
			t.Fatalf("rate limited: the fuzzer would meet only 429s from here on")
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
	// Each input comes from an address of its own: past the per-address
	// budgets of the token endpoint and of failed sign-ins (30 a minute)
	// every input from one address would meet the same 429.
	var n atomic.Uint32
	f.Fuzz(func(t *testing.T, prefix, user, pass string) {
		form := url.Values{"grant_type": {"password"}, "domain_prefix": {prefix}, "username": {user}, "password": {pass},
			"client_id": {demo.ClientID}, "client_secret": {demo.ClientSecret}}
		req := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		i := n.Add(1)
		req.RemoteAddr = netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String() + ":1234"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q %q: %d %s", prefix, user, rec.Code, rec.Body.String())
		}
	})
}
