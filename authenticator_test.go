package gatehouse_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
)

// tokenAuth accepts "Bearer <prefix>…" credentials it knows.
func tokenAuth(prefix string, valid map[string]*gatehouse.Principal) gatehouse.Authenticator {
	return gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		tok, err := gatehouse.BearerToken(r, true)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(tok, prefix) {
			return nil, gatehouse.ErrNoCredentials
		}
		if p, ok := valid[tok]; ok {
			return p, nil
		}
		return nil, apierror.InvalidToken(prefix + " credential not recognised")
	})
}

func whoami(w http.ResponseWriter, r *http.Request) {
	p := gatehouse.FromContext(r.Context())
	if p == nil {
		_, _ = w.Write([]byte("anonymous"))
		return
	}
	_, _ = w.Write([]byte(p.Subject))
}

func TestChain(t *testing.T) {
	t.Parallel()
	keys := tokenAuth("key_", map[string]*gatehouse.Principal{"key_good": {Subject: "key-user", Method: gatehouse.MethodAPIKey}})
	tokens := tokenAuth("tok_", map[string]*gatehouse.Principal{"tok_good": {Subject: "token-user", Method: gatehouse.MethodOAuthToken}})
	broken := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		if r.Header.Get("X-Break") != "" {
			return nil, errors.New("database is down")
		}
		return nil, gatehouse.ErrNoCredentials
	})
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{Logger: slog.New(slog.DiscardHandler)}, broken, keys, tokens)
	require.NoError(t, err)

	cases := []struct {
		name      string
		auth      string
		query     string
		brk       bool
		optional  bool
		status    int
		body      string
		challenge string
		errCode   string
		cache     string // the response's Cache-Control on success
	}{
		{name: "api key", auth: "Bearer key_good", status: 200, body: "key-user"},
		{name: "token", auth: "Bearer tok_good", status: 200, body: "token-user"},
		{name: "token query", query: "access_token=tok_good", status: 200, body: "token-user", cache: "private"},
		{name: "token query among others", query: "per_page=5&access_token=tok_good&page=2", status: 200, body: "token-user", cache: "private"},
		{name: "optional token query", optional: true, query: "access_token=tok_good", status: 200, body: "token-user", cache: "private"},
		{name: "header with other query", auth: "Bearer tok_good", query: "per_page=5", status: 200, body: "token-user"},
		{name: "scheme case", auth: "bearer   tok_good", status: 200, body: "token-user"},
		{name: "missing", status: 401, challenge: `Bearer realm="api"`, errCode: "UNAUTHORIZED"},
		{name: "bad key", auth: "Bearer key_bad", status: 401, challenge: `error="invalid_token"`, errCode: "UNAUTHORIZED"},
		{name: "bad token", auth: "Bearer tok_bad", status: 401, errCode: "UNAUTHORIZED"},
		{name: "unknown kind", auth: "Bearer other", status: 401, errCode: "UNAUTHORIZED"},
		{name: "basic scheme", auth: "Basic dXNlcjpwYXNz", status: 401, errCode: "UNAUTHORIZED"},
		{name: "malformed", auth: "Bearer a b", status: 400, errCode: "INVALID_REQUEST"},
		{name: "header and query", auth: "Bearer tok_good", query: "access_token=tok_good", status: 400, errCode: "INVALID_REQUEST"},
		{name: "internal", auth: "Bearer key_good", brk: true, status: 500, errCode: "INTERNAL_ERROR"},
		{name: "optional anonymous", optional: true, status: 200, body: "anonymous"},
		{name: "optional valid", optional: true, auth: "Bearer key_good", status: 200, body: "key-user"},
		{name: "optional invalid still 401", optional: true, auth: "Bearer key_bad", status: 401, errCode: "UNAUTHORIZED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := chain.Handler(http.HandlerFunc(whoami))
			if tc.optional {
				h = chain.Optional(http.HandlerFunc(whoami))
			}
			req := httptest.NewRequest("GET", "/v1/contacts/me?"+tc.query, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.brk {
				req.Header.Set("X-Break", "1")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.body != "" {
				assert.Equal(t, tc.body, rec.Body.String())
			}
			if tc.status == http.StatusOK {
				assert.Equal(t, tc.cache, rec.Header().Get("Cache-Control"), "RFC 6750 §2.3: private only when the token came in the URL")
			}
			if tc.challenge != "" {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), tc.challenge)
			}
			if tc.errCode != "" {
				var env struct{ Error struct{ Code string } }
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env))
				assert.Equal(t, tc.errCode, env.Error.Code)
				assert.NotContains(t, rec.Body.String(), "database is down")
			}
		})
	}
}

func TestNewChainValidates(t *testing.T) {
	t.Parallel()
	_, err := gatehouse.NewChain(gatehouse.ChainConfig{})
	assert.Error(t, err)
	_, err = gatehouse.NewChain(gatehouse.ChainConfig{}, nil)
	assert.Error(t, err)
}

func TestChainNilPrincipalIsAnError(t *testing.T) {
	t.Parallel()
	bad := gatehouse.AuthenticatorFunc(func(*http.Request) (*gatehouse.Principal, error) { return nil, nil })
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{Logger: slog.New(slog.DiscardHandler)}, bad)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	chain.Handler(http.HandlerFunc(whoami)).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, 500, rec.Code)
}

func TestParseBearer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, tok string
		none    bool
		bad     bool
	}{
		{in: "", none: true},
		{in: "Basic abc", none: true},
		{in: "Bearer", bad: true},
		{in: "Bearer ", bad: true},
		{in: "Bearer abc", tok: "abc"},
		{in: "BEARER abc", tok: "abc"},
		{in: "Bearer   abc", tok: "abc"},
		{in: "Bearer abc==", tok: "abc=="},
		{in: "Bearer a.b-c_d~e+f/g", tok: "a.b-c_d~e+f/g"},
		{in: "Bearer =abc", bad: true},
		{in: "Bearer ab=c", bad: true},
		{in: "Bearer abc def", bad: true},
		{in: "Bearer ab\"c", bad: true},
		{in: "Bearer abc\t", bad: true},
		{in: "Bearer " + strings.Repeat("a", gatehouse.MaxCredentialLength+1), bad: true},
		{in: "Bearerabc", none: true},
	}
	for _, tc := range cases {
		tok, err := gatehouse.ParseBearer(tc.in)
		switch {
		case tc.none:
			assert.ErrorIs(t, err, gatehouse.ErrNoCredentials, tc.in)
		case tc.bad:
			assert.Equal(t, 400, apierror.From(err).Status, tc.in)
		default:
			assert.NoError(t, err, tc.in)
			assert.Equal(t, tc.tok, tok)
		}
	}
}

func TestBearerTokenQueryRules(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("GET", "/?access_token=abc", nil)
	_, err := gatehouse.BearerToken(req, false)
	assert.ErrorIs(t, err, gatehouse.ErrNoCredentials, "query ignored unless allowed")
	tok, err := gatehouse.BearerToken(req, true)
	require.NoError(t, err)
	assert.Equal(t, "abc", tok)

	req = httptest.NewRequest("GET", "/?access_token=a&access_token=b", nil)
	_, err = gatehouse.BearerToken(req, true)
	assert.Equal(t, 400, apierror.From(err).Status)

	req = httptest.NewRequest("GET", "/", nil)
	req.Header.Add("Authorization", "Bearer a")
	req.Header.Add("Authorization", "Bearer b")
	_, err = gatehouse.BearerToken(req, false)
	assert.Equal(t, 400, apierror.From(err).Status)
}

func TestPrincipal(t *testing.T) {
	t.Parallel()
	var nilP *gatehouse.Principal
	assert.False(t, nilP.HasScope("a"))
	assert.Equal(t, "", nilP.RateLimitKey())
	p := &gatehouse.Principal{Subject: "u1", ClientID: "c1", Scopes: []string{"a", "b"}}
	assert.True(t, p.HasScope("b"))
	assert.False(t, p.HasScope("c"))
	assert.Equal(t, "client:c1:u1", p.RateLimitKey())
	p.KeyID = "k1"
	assert.Equal(t, "key:k1", p.RateLimitKey())
	assert.Same(t, p, p.SetLimitKey())
	assert.Equal(t, "key:k1", p.LimitKey)
	p.KeyID = "k2" // LimitKey is fixed once set
	assert.Equal(t, "key:k1", p.RateLimitKey())
	shared := &gatehouse.Principal{KeyID: "k3", LimitKey: "org:o1"}
	assert.Equal(t, "org:o1", shared.SetLimitKey().RateLimitKey(), "a LimitKey of the authenticator's own is kept")
	assert.Nil(t, nilP.SetLimitKey())
	assert.True(t, gatehouse.Live.Valid())
	assert.False(t, gatehouse.Environment("prod").Valid())
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Basic x", "Bearer", "Bearer  a==", "Bearer a b", "", "Bearer Az09-._~+/==", "Bearer ab=c", "Bearer =", "Bearer a\x80"} {
		f.Add(s)
	}
	// RFC 6750's b64token, the oracle for what a credential may be.
	b64token := regexp.MustCompile(`^[A-Za-z0-9\-._~+/]+=*$`)
	f.Fuzz(func(t *testing.T, header string) {
		// Every b64token is accepted after "Bearer ", and as it is.
		if cred := strings.TrimPrefix(header, "Bearer "); cred != header && b64token.MatchString(cred) && len(cred) <= gatehouse.MaxCredentialLength {
			if got, err := gatehouse.ParseBearer(header); err != nil || got != cred {
				t.Fatalf("refused the b64token %q: %v", cred, err)
			}
		}
		tok, err := gatehouse.ParseBearer(header)
		if err != nil {
			if !errors.Is(err, gatehouse.ErrNoCredentials) && apierror.From(err).Status != 400 {
				t.Fatalf("unexpected error kind %v", err)
			}
			return
		}
		if tok == "" || len(tok) > gatehouse.MaxCredentialLength || !b64token.MatchString(tok) {
			t.Fatalf("accepted bad token %q from %q", tok, header)
		}
		if !strings.HasSuffix(header, tok) {
			t.Fatalf("token %q not taken from %q", tok, header)
		}
	})
}

// observer returns middleware that records in *after, once its handler
// has returned, who its own request's context names: what an access log
// there would see.
func observer(after *string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			*after = "anonymous"
			if p := gatehouse.FromContext(r.Context()); p != nil {
				*after = p.Subject
			}
		})
	}
}

// TestChainPrincipalInRequestContext: behind apierror.RequestID the chain
// stores its principal in the request's own context, so that an outer
// middleware reads it after the handler returns; a nested chain, a
// principal stored with NewContext, or a stack without RequestID each
// still give the handler the nearest principal.
func TestChainPrincipalInRequestContext(t *testing.T) {
	t.Parallel()
	outer := tokenAuth("key_", map[string]*gatehouse.Principal{"key_a": {Subject: "a"}})
	inner := tokenAuth("tok_", map[string]*gatehouse.Principal{"tok_b": {Subject: "b"}})
	first, err := gatehouse.NewChain(gatehouse.ChainConfig{}, outer)
	require.NoError(t, err)
	second, err := gatehouse.NewChain(gatehouse.ChainConfig{}, inner)
	require.NoError(t, err)
	// secondAuth re-authenticates with the X-Second credential.
	secondAuth := func(next http.Handler) http.Handler {
		h := second.Handler(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.Header.Set("Authorization", "Bearer "+r.Header.Get("X-Second"))
			h.ServeHTTP(w, r2)
		})
	}
	preset := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), &gatehouse.Principal{Subject: "preset"})))
		})
	}
	presetNil := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r.WithContext(gatehouse.NewContext(r.Context(), nil)))
		})
	}
	var after string
	observe := observer(&after)
	type mw = func(http.Handler) http.Handler
	cases := []struct {
		name       string
		stack      []mw   // outermost first, around whoami
		second     string // X-Second credential
		handler    string // who the handler sees
		afterwards string // who observe sees once the handler returned
	}{
		{name: "request id then chain", stack: []mw{apierror.RequestID, observe, first.Handler}, handler: "a", afterwards: "a"},
		{name: "optional chain", stack: []mw{apierror.RequestID, observe, first.Optional}, handler: "a", afterwards: "a"},
		{name: "nested chain wins", stack: []mw{apierror.RequestID, observe, first.Handler, secondAuth}, second: "tok_b", handler: "b", afterwards: "a"},
		{name: "chain inside NewContext", stack: []mw{apierror.RequestID, observe, preset, first.Handler}, handler: "a", afterwards: "anonymous"},
		{name: "chain inside NewContext(nil)", stack: []mw{apierror.RequestID, observe, presetNil, first.Handler}, handler: "a", afterwards: "anonymous"},
		{name: "NewContext inside chain", stack: []mw{apierror.RequestID, observe, first.Handler, preset}, handler: "preset", afterwards: "a"},
		{name: "NewContext outside request id", stack: []mw{preset, apierror.RequestID, observe, first.Handler}, handler: "a", afterwards: "a"},
		{name: "NewContext outside request id, observed outside", stack: []mw{preset, observe, apierror.RequestID, first.Handler}, handler: "a", afterwards: "preset"},
		{name: "observed outside request id", stack: []mw{observe, apierror.RequestID, first.Handler}, handler: "a", afterwards: "anonymous"},
		{name: "no request id", stack: []mw{observe, first.Handler}, handler: "a", afterwards: "anonymous"},
		{name: "chain outside request id", stack: []mw{observe, first.Handler, apierror.RequestID}, handler: "a", afterwards: "anonymous"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h http.Handler = http.HandlerFunc(whoami)
			for i := len(tc.stack) - 1; i >= 0; i-- {
				h = tc.stack[i](h)
			}
			after = ""
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer key_a")
			req.Header.Set("X-Second", tc.second)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, 200, rec.Code, rec.Body.String())
			assert.Equal(t, tc.handler, rec.Body.String())
			assert.Equal(t, tc.afterwards, after)
		})
	}
}

// TestChainPrincipalConcurrentReaders: a goroutine that holds the request's
// context while the chain authenticates sees either no principal or the
// one the chain stored (run with -race).
func TestChainPrincipalConcurrentReaders(t *testing.T) {
	t.Parallel()
	p := &gatehouse.Principal{Subject: "a"}
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, tokenAuth("key_", map[string]*gatehouse.Principal{"key_a": p}))
	require.NoError(t, err)
	for range 50 {
		seen := make(chan *gatehouse.Principal, 1)
		h := apierror.RequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			go func() {
				var last *gatehouse.Principal
				for range 100 {
					if got := gatehouse.FromContext(ctx); got != nil {
						last = got
					}
				}
				seen <- last
			}()
			chain.Handler(http.HandlerFunc(whoami)).ServeHTTP(w, r)
		}))
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer key_a")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, "a", rec.Body.String())
		if got := <-seen; got != nil {
			require.Same(t, p, got)
		}
	}
}

// TestChainSubRequestsShareNoPrincipal: a handler that serves sub-requests
// in process with its request's context (a batch endpoint, say), each with
// its own credential, never lends one sub-request's principal to its own
// request or to a sibling: only the request RequestID passed on keeps its
// principal in RequestID's context.
func TestChainSubRequestsShareNoPrincipal(t *testing.T) {
	t.Parallel()
	outer, err := gatehouse.NewChain(gatehouse.ChainConfig{}, tokenAuth("key_", map[string]*gatehouse.Principal{"key_a": {Subject: "a"}}))
	require.NoError(t, err)
	inner, err := gatehouse.NewChain(gatehouse.ChainConfig{}, tokenAuth("tok_", map[string]*gatehouse.Principal{"tok_b": {Subject: "b"}}))
	require.NoError(t, err)
	name := func(r *http.Request) string {
		if p := gatehouse.FromContext(r.Context()); p != nil {
			return p.Subject
		}
		return "anonymous"
	}
	for _, tc := range []struct {
		auth string
		want string // sub-request with a credential, anonymous sub-request, the request itself afterwards
	}{
		{auth: "", want: "b anonymous anonymous"},
		// An anonymous sub-request made with the request's context sees
		// the request's principal, as it always has through the context.
		{auth: "Bearer key_a", want: "b a a"},
	} {
		batch := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			serve := func(h http.Handler, auth string) string {
				sub := r.Clone(r.Context())
				sub.Header.Del("Authorization")
				if auth != "" {
					sub.Header.Set("Authorization", auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, sub)
				return rec.Body.String()
			}
			got := serve(inner.Handler(http.HandlerFunc(whoami)), "Bearer tok_b")
			got += " " + serve(inner.Optional(http.HandlerFunc(whoami)), "")
			_, _ = w.Write([]byte(got + " " + name(r)))
		})
		h := apierror.RequestID(outer.Optional(batch))
		req := httptest.NewRequest("POST", "/batch", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		assert.Equal(t, tc.want, rec.Body.String(), "auth %q", tc.auth)
	}
}

func TestChainOnRefusedOnlyForRefusedCredentials(t *testing.T) {
	t.Parallel()
	auth := gatehouse.AuthenticatorFunc(func(r *http.Request) (*gatehouse.Principal, error) {
		switch r.Header.Get("Authorization") {
		case "Bearer good":
			return &gatehouse.Principal{KeyID: "k"}, nil
		case "Bearer bad":
			return nil, apierror.InvalidToken("API key revoked")
		case "Bearer malformed":
			return nil, apierror.New(http.StatusBadRequest, apierror.CodeInvalidRequest, "two credentials")
		case "Bearer boom":
			return nil, errors.New("storage down")
		}
		return nil, gatehouse.ErrNoCredentials
	})
	var refused []string
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{Logger: slog.New(slog.DiscardHandler), OnRefused: func(r *http.Request, err error) {
		refused = append(refused, r.Header.Get("Authorization")+": "+apierror.From(err).Code)
	}}, auth)
	require.NoError(t, err)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, h := range []http.Handler{chain.Handler(ok), chain.Optional(ok)} {
		refused = nil
		for _, cred := range []string{"", "good", "bad", "malformed", "boom"} {
			req := httptest.NewRequest("GET", "/v1/bookings", nil)
			if cred != "" {
				req.Header.Set("Authorization", "Bearer "+cred)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
		assert.Equal(t, []string{"Bearer bad: " + apierror.CodeUnauthorized, "Bearer malformed: " + apierror.CodeInvalidRequest}, refused,
			"no credential, success and internal failure are not refusals")
	}
}
