package scope

import (
	"errors"
	"net/http"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
)

// Guard is middleware that lets a request through only when its principal
// holds the required scopes. Build one with [Require] or [RequireAny]. A
// Guard is immutable and safe for concurrent use; its happy path does not
// allocate.
type Guard struct {
	catalog  *Catalog
	required []string
	any      bool
	// ErrorHandler writes refusals. Default: apierror.Write.
	onError func(w http.ResponseWriter, r *http.Request, err error)
}

// Require returns a guard that needs every one of scopes. With a catalog,
// a scope is also satisfied by one that implies it and by its resource
// wildcard; with a nil catalog only the exact token counts. Unknown or
// malformed scopes are an error.
func Require(c *Catalog, scopes ...string) (*Guard, error) {
	return newGuard(c, false, scopes)
}

// RequireAny returns a guard that needs at least one of scopes.
func RequireAny(c *Catalog, scopes ...string) (*Guard, error) {
	return newGuard(c, true, scopes)
}

// MustRequire is like [Require] but panics on error. Use it where the
// scopes are constants, so a typo fails at start-up.
func MustRequire(c *Catalog, scopes ...string) *Guard {
	g, err := Require(c, scopes...)
	if err != nil {
		panic(err)
	}
	return g
}

// MustRequireAny is like [RequireAny] but panics on error.
func MustRequireAny(c *Catalog, scopes ...string) *Guard {
	g, err := RequireAny(c, scopes...)
	if err != nil {
		panic(err)
	}
	return g
}

func newGuard(c *Catalog, anyOf bool, scopes []string) (*Guard, error) {
	if len(scopes) == 0 {
		return nil, errors.New("scope: a guard needs at least one scope")
	}
	set, err := NewSet(scopes...)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if err := c.Check(set); err != nil {
			return nil, err
		}
	}
	return &Guard{catalog: c, required: set, any: anyOf, onError: apierror.Write}, nil
}

// WithErrorHandler returns a copy of g that writes refusals with h.
func (g *Guard) WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) *Guard {
	c := *g
	c.onError = h
	return &c
}

// Required returns the scopes the guard checks.
func (g *Guard) Required() []string { return append([]string(nil), g.required...) }

// Check returns nil when p holds the required scopes; a 401 when p is nil
// (nobody authenticated); and a 403 INSUFFICIENT_SCOPE naming the missing
// scopes otherwise.
func (g *Guard) Check(p *gatehouse.Principal) error {
	if p == nil {
		return apierror.Unauthorized("")
	}
	if g.any {
		for _, s := range g.required {
			if g.catalog.Satisfies(p.Scopes, s) {
				return nil
			}
		}
		return apierror.InsufficientScope(g.Required(), g.Required())
	}
	for i, s := range g.required {
		if !g.catalog.Satisfies(p.Scopes, s) {
			return g.missing(p, i)
		}
	}
	return nil
}

func (g *Guard) missing(p *gatehouse.Principal, from int) error {
	var miss []string
	for _, s := range g.required[from:] {
		if !g.catalog.Satisfies(p.Scopes, s) {
			miss = append(miss, s)
		}
	}
	return apierror.InsufficientScope(g.Required(), miss)
}

// Handler wraps next.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := g.Check(gatehouse.FromContext(r.Context())); err != nil {
			g.onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
