package scope_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/scope"
)

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in   string
		want scope.Set
		bad  bool
	}{
		{in: "", want: nil},
		{in: "bookings:read", want: scope.Set{"bookings:read"}},
		{in: "b a", want: scope.Set{"a", "b"}},
		{in: "a a b a", want: scope.Set{"a", "b"}},
		{in: "a  b", bad: true},
		{in: " a", bad: true},
		{in: "a ", bad: true},
		{in: "a\tb", bad: true},
		{in: `a"b`, bad: true},
		{in: `a\b`, bad: true},
		{in: "caf\u00e9", bad: true},
		{in: "!#$%&'()*+,-./:;<=>?@[]^_`{|}~", want: scope.Set{"!#$%&'()*+,-./:;<=>?@[]^_`{|}~"}},
		{in: strings.Repeat("a", scope.MaxLength+1), bad: true},
	}
	for _, tc := range cases {
		got, err := scope.Parse(tc.in)
		if tc.bad {
			assert.ErrorIs(t, err, scope.ErrInvalid, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
}

func TestSetOps(t *testing.T) {
	t.Parallel()
	a := scope.MustSet("x", "y", "z")
	b := scope.MustSet("y", "w")
	assert.Equal(t, scope.Set{"w", "x", "y", "z"}, a.Union(b))
	assert.Equal(t, scope.Set{"y"}, a.Intersect(b))
	assert.Equal(t, scope.Set{"x", "z"}, a.Minus(b))
	assert.True(t, a.Has("z"))
	assert.False(t, a.Has("w"))
	assert.Equal(t, "x y z", a.String())
	_, err := scope.NewSet("ok", "not ok")
	assert.ErrorIs(t, err, scope.ErrInvalid)
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	c := scope.DefaultCatalog()
	assert.Len(t, c.Scopes(), 9)
	s, ok := c.Lookup("payments:write")
	require.True(t, ok)
	assert.Equal(t, "Process payments and refunds", s.Description)
	w, ok := c.Lookup("bookings:*")
	require.True(t, ok)
	assert.Contains(t, w.Description, "bookings:read, bookings:write")
	_, ok = c.Lookup("nope:read")
	assert.False(t, ok)

	assert.NoError(t, c.Check(scope.MustSet("bookings:read", "staff:*")))
	err := c.Check(scope.MustSet("bookings:read", "bookings:delete", "x"))
	assert.ErrorIs(t, err, scope.ErrUnknown)
	assert.Contains(t, err.Error(), "bookings:delete, x")
	assert.Equal(t, "must all be known; unknown: bookings:delete, x", scope.Issue(err))
	_, err = scope.NewSet("bookings:read", "")
	assert.Equal(t, "must be valid scope tokens: empty scope token (scopes are separated by single spaces)", scope.Issue(err))
	assert.Equal(t, "disk full", scope.Issue(errors.New("disk full")), "other errors as they are")

	assert.Equal(t, scope.Set{"bookings:read", "bookings:write", "customers:read"},
		c.Expand(scope.MustSet("bookings:write", "customers:read")))
	assert.Equal(t, scope.Set{"staff:read", "staff:write"}, c.Expand(scope.MustSet("staff:*")))

	cases := []struct {
		granted  []string
		required string
		ok       bool
	}{
		{[]string{"bookings:read"}, "bookings:read", true},
		{[]string{"bookings:write"}, "bookings:read", true},
		{[]string{"bookings:read"}, "bookings:write", false},
		{[]string{"bookings:*"}, "bookings:write", true},
		{[]string{"customers:*"}, "bookings:read", false},
		{[]string{"bookings:write"}, "bookings:*", false},
		{[]string{"bookings:*"}, "bookings:*", true},
		{nil, "bookings:read", false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.ok, c.Satisfies(tc.granted, tc.required), "%v ⊢ %s", tc.granted, tc.required)
	}

	granted, refused := c.Narrow(scope.MustSet("bookings:read", "payments:write", "staff:read"), scope.MustSet("bookings:write", "staff:*"))
	assert.Equal(t, scope.Set{"bookings:read", "staff:read"}, granted)
	assert.Equal(t, scope.Set{"payments:write"}, refused)
}

func TestCatalogValidation(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]scope.Scope{
		{{Name: "a b"}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", Implies: []string{"b"}}},
		{{Name: "x:*"}},
	} {
		_, err := scope.NewCatalog(bad...)
		assert.Error(t, err)
	}
	c, err := scope.DefaultCatalog().With(scope.Scope{Name: "webhooks:read", Description: "See webhooks"},
		scope.Scope{Name: "webhooks:write", Description: "Manage webhooks", Implies: []string{"webhooks:read"}})
	require.NoError(t, err)
	assert.Len(t, c.Scopes(), 11)
	assert.True(t, c.Satisfies([]string{"webhooks:write"}, "webhooks:read"))
	// Implications are transitive.
	c2 := scope.MustCatalog(scope.Scope{Name: "a", Implies: []string{"b"}}, scope.Scope{Name: "b", Implies: []string{"c"}}, scope.Scope{Name: "c"})
	assert.True(t, c2.Satisfies([]string{"a"}, "c"))
}

func TestGuard(t *testing.T) {
	t.Parallel()
	c := scope.DefaultCatalog()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })
	cases := []struct {
		name    string
		guard   *scope.Guard
		p       *gatehouse.Principal
		status  int
		missing []string
	}{
		{"has it", scope.MustRequire(c, "bookings:read"), &gatehouse.Principal{Scopes: []string{"bookings:read"}}, 204, nil},
		{"implied", scope.MustRequire(c, "bookings:read"), &gatehouse.Principal{Scopes: []string{"bookings:write"}}, 204, nil},
		{"wildcard", scope.MustRequire(c, "bookings:write"), &gatehouse.Principal{Scopes: []string{"bookings:*"}}, 204, nil},
		{"lacks", scope.MustRequire(c, "bookings:write"), &gatehouse.Principal{Scopes: []string{"bookings:read"}}, 403, []string{"bookings:write"}},
		{"lacks some", scope.MustRequire(c, "bookings:read", "staff:read", "payments:read"), &gatehouse.Principal{Scopes: []string{"staff:write"}}, 403, []string{"bookings:read", "payments:read"}},
		{"anonymous", scope.MustRequire(c, "bookings:read"), nil, 401, nil},
		{"any one", scope.MustRequireAny(c, "bookings:read", "staff:read"), &gatehouse.Principal{Scopes: []string{"staff:read"}}, 204, nil},
		{"any none", scope.MustRequireAny(c, "bookings:read", "staff:read"), &gatehouse.Principal{Scopes: []string{"payments:read"}}, 403, []string{"bookings:read", "staff:read"}},
		{"no catalog exact", scope.MustRequire(nil, "bookings:read"), &gatehouse.Principal{Scopes: []string{"bookings:write"}}, 403, []string{"bookings:read"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest("GET", "/", nil)
			if tc.p != nil {
				req = req.WithContext(gatehouse.NewContext(req.Context(), tc.p))
			}
			rec := httptest.NewRecorder()
			tc.guard.Handler(ok).ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code)
			switch tc.status {
			case 403:
				var env struct {
					Error struct {
						Code    string
						Details struct{ Missing, Required []string }
					}
				}
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &env))
				assert.Equal(t, "INSUFFICIENT_SCOPE", env.Error.Code)
				assert.Equal(t, tc.missing, env.Error.Details.Missing)
				assert.Equal(t, tc.guard.Required(), env.Error.Details.Required)
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), `error="insufficient_scope", scope="`+strings.Join(tc.guard.Required(), " ")+`"`)
			case 401:
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
			}
		})
	}
}

func TestGuardConstruction(t *testing.T) {
	t.Parallel()
	_, err := scope.Require(scope.DefaultCatalog(), "bookings:reed")
	assert.ErrorIs(t, err, scope.ErrUnknown)
	_, err = scope.Require(nil)
	assert.Error(t, err)
	_, err = scope.Require(nil, "a b")
	assert.True(t, errors.Is(err, scope.ErrInvalid))
	assert.Panics(t, func() { scope.MustRequire(scope.DefaultCatalog(), "nope") })
}

func TestGuardHappyPathDoesNotAllocate(t *testing.T) {
	g := scope.MustRequire(scope.DefaultCatalog(), "bookings:read", "customers:read")
	p := &gatehouse.Principal{Scopes: []string{"customers:write", "bookings:read", "staff:read"}}
	allocs := testing.AllocsPerRun(1000, func() {
		if g.Check(p) != nil {
			t.Fatal("refused")
		}
	})
	assert.Zero(t, allocs)
}

func BenchmarkRequire(b *testing.B) {
	g := scope.MustRequire(scope.DefaultCatalog(), "bookings:read")
	p := &gatehouse.Principal{Scopes: []string{"customers:read", "bookings:write", "staff:read"}}
	req := httptest.NewRequest("GET", "/", nil)
	req = req.WithContext(gatehouse.NewContext(req.Context(), p))
	h := g.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var w http.ResponseWriter = httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_, _ = scope.Parse("bookings:read customers:read payments:write staff:read")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "a", "bookings:read customers:write", "a  b", " a", "a\"", "a a a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		set, err := scope.Parse(s)
		if err != nil {
			if !errors.Is(err, scope.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		// Round trip: the canonical string parses to the same set.
		again, err := scope.Parse(set.String())
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", set.String(), err)
		}
		if set.String() != again.String() {
			t.Fatalf("round trip changed %q to %q", set.String(), again.String())
		}
		for i := 1; i < len(set); i++ {
			if set[i-1] >= set[i] {
				t.Fatalf("set not sorted and unique: %q", set)
			}
		}
		for _, tok := range set {
			if !strings.Contains(" "+s+" ", " "+tok+" ") {
				t.Fatalf("token %q not in input %q", tok, s)
			}
		}
	})
}
