package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/paginate"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

type bookingRow struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Status  string `json:"status"`
}

var bookings = []bookingRow{{"0194a3b2-7c1d-7000-8000-000000000001", "Haircut", "confirmed"}, {"0194a3b2-7c1d-7000-8000-000000000002", "Colour", "confirmed"}}

// BenchmarkRequestPath: GET /v1/bookings through Gatehouse's whole stack —
// request id, recovery, API-key authentication (warm cache), scope guard,
// rate limit (memory, 1000/h + 100/m scaled up so it never refuses),
// pagination headers, JSON — beside a bare handler writing the same body.
func list(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(bookings)
}

// sink is a ResponseWriter that costs what net/http's own does per
// request — a fresh header map, the body written and dropped — without
// httptest.ResponseRecorder's snapshot copy of every header, which would
// bill each header the stack sets twice.
type sink struct {
	h      http.Header
	status int
	n      int
}

func newSink() *sink                        { return &sink{h: make(http.Header, 8)} }
func (s *sink) Header() http.Header         { return s.h }
func (s *sink) WriteHeader(code int)        { s.status = cmp.Or(s.status, code) }
func (s *sink) Write(p []byte) (int, error) { s.WriteHeader(200); s.n += len(p); return len(p), nil }

var sameHeaders = [][2]string{{"X-Request-Id", "9f3c2a7d41e0b65c8d2f1a0e7b3c4d5e"}, {"X-Ratelimit-Limit", "100"}, {"X-Ratelimit-Remaining", "99"},
	{"X-Ratelimit-Reset", "1795860000"}, {"X-Pagination-Per-Page", "25"}, {"X-Pagination-Current-Page", "1"}, {"X-Pagination-Total-Pages", "1"},
	{"X-Pagination-Total-Entries", "2"},
	{"Link", `</v1/bookings?page=1&per_page=25>; rel="first", </v1/bookings?page=1&per_page=25>; rel="last"`}}

func BenchmarkRequestPath(b *testing.B) {
	b.Run("bare-net-http", func(b *testing.B) {
		h := http.HandlerFunc(list)
		req := httptest.NewRequest("GET", "/v1/bookings?per_page=25&page=1", nil)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(newSink(), req)
		}
	})
	// The same body with the same ten response headers, their values
	// constant: the floor for any stack that emits what the seeds ask for
	// (X-Request-Id, X-RateLimit-*, X-Pagination-*, Link).
	b.Run("bare-same-headers", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hd := w.Header()
			for _, kv := range sameHeaders {
				hd.Set(kv[0], kv[1])
			}
			list(w, r)
		})
		req := httptest.NewRequest("GET", "/v1/bookings?per_page=25&page=1", nil)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(newSink(), req)
		}
	})
	// The same ten headers with their value slices made once, outside the
	// loop: what the header map itself costs (its growth past eight keys),
	// without an allocation per value.
	b.Run("bare-same-headers-preset", func(b *testing.B) {
		h := presetHeaders()
		req := httptest.NewRequest("GET", "/v1/bookings?per_page=25&page=1", nil)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(newSink(), req)
		}
	})
	b.Run("gatehouse", func(b *testing.B) {
		secret, chain := apiKeyChain(b)
		runPath(b, stack(chain), secret)
	})
	for _, jwt := range []bool{false, true} {
		name := "gatehouse-oauth-opaque"
		if jwt {
			name = "gatehouse-oauth-jwt"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			cfg := oauth.Config{Issuer: "http://127.0.0.1", Secret: make([]byte, 32)}
			if jwt {
				cfg.JWTKeys, _ = oauth.NewKeySet()
			}
			p, err := oauth.New(memory.New(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			secret, c, _ := p.RegisterClient(ctx, oauth.ClientParams{OrganisationID: "o", Name: "b", Grants: []string{"client_credentials"}, Scopes: []string{"bookings:read"}})
			rec := httptest.NewRecorder()
			p.TokenHandler().ServeHTTP(rec, tokenRequest(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret))
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
				b.Fatal(rec.Body.String())
			}
			chain, _ := gatehouse.NewChain(gatehouse.ChainConfig{}, p.Authenticator(oauth.ResourceConfig{}))
			runPath(b, stack(chain), tok.AccessToken)
		})
	}
}

// presetHeaders is the bare handler setting the same ten headers as the
// stack, their value slices made once: what the header map itself costs
// (its growth past eight keys), without an allocation per value.
func presetHeaders() http.Handler {
	vals := make([][]string, len(sameHeaders))
	for i, kv := range sameHeaders {
		vals[i] = []string{kv[1]}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for i, kv := range sameHeaders {
			hd[kv[0]] = vals[i]
		}
		list(w, r)
	})
}

// BenchmarkRequestPathParallel is BenchmarkRequestPath's bare, preset and
// Gatehouse rows served from every core at once, all requests with the
// one API key, as under wrk: what the key's shared state (its usage
// counters, its rate-limit window and that shard's mutex) costs when
// cores contend for it. Compare each row's ratio to its serial one.
func BenchmarkRequestPathParallel(b *testing.B) {
	run := func(b *testing.B, h http.Handler, credential string) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := httptest.NewRequest("GET", "/v1/bookings?per_page=25&page=1", nil)
			if credential != "" {
				req.Header.Set("Authorization", "Bearer "+credential)
			}
			for pb.Next() {
				h.ServeHTTP(newSink(), req)
			}
		})
	}
	b.Run("bare-net-http", func(b *testing.B) { run(b, http.HandlerFunc(list), "") })
	b.Run("bare-same-headers-preset", func(b *testing.B) { run(b, presetHeaders(), "") })
	b.Run("gatehouse", func(b *testing.B) {
		secret, chain := apiKeyChain(b)
		run(b, stack(chain), secret)
	})
}

// apiKeyChain returns an API key and the authentication chain that
// accepts it (in-memory store; usage flushed only on Close).
func apiKeyChain(b *testing.B) (string, *gatehouse.Chain) {
	ctx := context.Background()
	keys, err := apikey.New(memory.New(), apikey.Config{FlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = keys.Close(ctx) })
	secret, _, err := keys.Create(ctx, apikey.CreateParams{OrganisationID: "o", Scopes: []string{"bookings:read"}})
	if err != nil {
		b.Fatal(err)
	}
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, keys)
	if err != nil {
		b.Fatal(err)
	}
	return secret.Reveal(), chain
}

// limitsAndGuard returns the memory rate limiter (1000/h + 100/m scaled up
// so it never refuses) and the bookings:read guard of the request path.
func limitsAndGuard() (*ratelimit.Middleware, *scope.Guard) {
	big := ratelimit.MustPolicy("standard", "1000000000/h,100000000/m")
	rl, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.Config{Default: &big})
	if err != nil {
		panic(err) // constant input
	}
	return rl, scope.MustRequire(scope.DefaultCatalog(), scope.BookingsRead)
}

// paginated is the endpoint: pagination parameters and headers, then the
// bare handler's body.
var paginated = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	p, err := paginate.FromRequest(r, paginate.Options{})
	if err != nil {
		apierror.Write(w, r, err)
		return
	}
	paginate.SetHeaders(w, r, p, len(bookings), len(bookings))
	list(w, r)
})

// stack is the whole request path around the endpoint, authenticating
// with chain.
func stack(chain *gatehouse.Chain) http.Handler {
	rl, guard := limitsAndGuard()
	return apierror.RequestID(apierror.Recover(chain.Handler(rl.Handler(guard.Handler(paginated)))))
}

// runPath serves GET /v1/bookings with the credential until b is done.
func runPath(b *testing.B, h http.Handler, credential string) {
	req := httptest.NewRequest("GET", "/v1/bookings?per_page=25&page=1", nil)
	req.Header.Set("Authorization", "Bearer "+credential)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		b.Fatal(rec.Body.String())
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(newSink(), req)
	}
}
