package gatehouse_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
)

// TestChainWithChi: the chain composes with chi as with net/http's
// ServeMux, with its middleware used inside chi (r.Use) or around the
// whole router. Inside, an access log between RequestID and the chain sees
// the principal once the handler returns; around it, chi serves a copy of
// the request with its own context, and the chain's principal stays in a
// context of its own (the handler sees it; an outer log does not).
func TestChainWithChi(t *testing.T) {
	t.Parallel()
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, tokenAuth("key_", map[string]*gatehouse.Principal{"key_a": {Subject: "a"}}))
	require.NoError(t, err)
	var after string
	observe := observer(&after)
	handler := func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(gatehouse.FromContext(r.Context()).Subject + " " + chi.URLParam(r, "id")))
	}

	inside := chi.NewRouter()
	inside.Use(apierror.RequestID, observe, chain.Handler)
	inside.Get("/v1/bookings/{id}", handler)

	plain := chi.NewRouter()
	plain.With(chain.Handler).Get("/v1/bookings/{id}", handler)
	around := apierror.RequestID(observe(plain))

	for _, tc := range []struct {
		name  string
		h     http.Handler
		after string
	}{
		{"inside chi", inside, "a"},
		{"around chi", around, "anonymous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after = ""
			req := httptest.NewRequest("GET", "/v1/bookings/42", nil)
			req.Header.Set("Authorization", "Bearer key_a")
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Equal(t, "a 42", rec.Body.String())
			assert.NotEmpty(t, rec.Header().Get(apierror.HeaderRequestID))
			assert.Equal(t, tc.after, after)

			req.Header.Del("Authorization")
			rec = httptest.NewRecorder()
			tc.h.ServeHTTP(rec, req)
			assert.Equal(t, 401, rec.Code)
		})
	}
}
