package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
)

// BenchmarkLayers: what each middleware of the request path costs on its
// own, around the bare handler of BenchmarkRequestPath. The rate limiter
// and the scope guard need a principal: their rows run behind
// principal-context (a fixed principal stored in the context, which is
// what the authentication chain adds besides verifying the credential),
// so their own cost is their row minus that one. The paginate row is the
// handler with FromRequest and SetHeaders. requestid-chain is the chain
// where the request path has it, inside RequestID, which spares it a
// context and a request copy of its own.
func BenchmarkLayers(b *testing.B) {
	secret, chain := apiKeyChain(b)
	rl, guard := limitsAndGuard()
	bare := http.HandlerFunc(list)
	withPrincipal := func(next http.Handler) http.Handler {
		p := (&gatehouse.Principal{KeyID: "k", Scopes: []string{"bookings:read"}}).SetLimitKey()
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), p)))
		})
	}
	for _, l := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", bare},
		{"requestid", apierror.RequestID(bare)},
		{"recover", apierror.Recover(bare)},
		{"chain", chain.Handler(bare)},
		// Behind RequestID the chain stores its principal in RequestID's
		// context: this row minus requestid is the chain's cost there.
		{"requestid-chain", apierror.RequestID(chain.Handler(bare))},
		{"principal-context", withPrincipal(bare)},
		{"ratelimit", withPrincipal(rl.Handler(bare))},
		{"guard", withPrincipal(guard.Handler(bare))},
		{"paginate", paginated},
	} {
		b.Run(l.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/v1/bookings?per_page=25&page=1", nil)
			req.Header.Set("Authorization", "Bearer "+secret)
			first := newSink()
			l.h.ServeHTTP(first, req)
			if first.status != 200 {
				b.Fatalf("status %d", first.status)
			}
			b.ReportAllocs()
			for b.Loop() {
				l.h.ServeHTTP(newSink(), req)
			}
		})
	}
}
