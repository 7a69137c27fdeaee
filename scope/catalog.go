package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknown is wrapped by errors about scopes a catalog does not know.
var ErrUnknown = errors.New("scope: unknown scope")

// Scope is one entry of a [Catalog].
type Scope struct {
	// Name is the scope token, such as "bookings:read".
	Name string
	// Description says, for a consent screen, what the scope lets an
	// application do ("Read booking and appointment data").
	Description string
	// Implies lists scopes that holding this one also grants:
	// "bookings:write" implies "bookings:read". Implications are
	// transitive.
	Implies []string
}

// Catalog is the set of scopes an API knows, with their descriptions and
// implications. Besides its entries, a catalog knows one wildcard per
// resource: "bookings:*" for the prefix "bookings:" grants every catalog
// scope that starts with it.
//
// A Catalog is immutable and safe for concurrent use.
type Catalog struct {
	entries []Scope
	byName  map[string]int
	// grants maps every known token (wildcards included) to the sorted set
	// of catalog scopes it grants, itself included.
	grants map[string]Set
	// satisfiers maps every catalog scope to the sorted tokens whose grant
	// includes it.
	satisfiers map[string][]string
}

// NewCatalog builds a catalog. It fails when a name is not valid scope
// syntax, is a wildcard, is listed twice, or implies a scope the catalog
// does not list.
func NewCatalog(scopes ...Scope) (*Catalog, error) {
	c := &Catalog{
		entries: append([]Scope(nil), scopes...),
		byName:  make(map[string]int, len(scopes)),
	}
	for i, s := range scopes {
		if err := Validate(s.Name); err != nil {
			return nil, fmt.Errorf("scope: catalog entry %d: %w", i, err)
		}
		if strings.HasSuffix(s.Name, ":*") {
			return nil, fmt.Errorf("scope: catalog entry %q: wildcards are implicit, do not list them", s.Name)
		}
		if _, dup := c.byName[s.Name]; dup {
			return nil, fmt.Errorf("scope: catalog lists %q twice", s.Name)
		}
		c.byName[s.Name] = i
	}
	for _, s := range scopes {
		for _, imp := range s.Implies {
			if _, ok := c.byName[imp]; !ok {
				return nil, fmt.Errorf("scope: %q implies %q: %w", s.Name, imp, ErrUnknown)
			}
		}
	}
	c.grants = make(map[string]Set, len(scopes)*2)
	for _, s := range scopes {
		c.grants[s.Name] = c.closure([]string{s.Name})
		if pfx, ok := resourcePrefix(s.Name); ok {
			w := pfx + "*"
			c.grants[w] = c.grants[w].Union(c.grants[s.Name])
		}
	}
	c.satisfiers = make(map[string][]string, len(scopes))
	for tok, granted := range c.grants {
		for _, g := range granted {
			c.satisfiers[g] = append(c.satisfiers[g], tok)
		}
	}
	for k := range c.satisfiers {
		slices.Sort(c.satisfiers[k])
	}
	return c, nil
}

// MustCatalog is like [NewCatalog] but panics on error; for catalogs
// written as constants.
func MustCatalog(scopes ...Scope) *Catalog {
	c, err := NewCatalog(scopes...)
	if err != nil {
		panic(err)
	}
	return c
}

// With returns a new catalog with the entries of c followed by more.
func (c *Catalog) With(more ...Scope) (*Catalog, error) {
	return NewCatalog(append(append([]Scope(nil), c.entries...), more...)...)
}

// resourcePrefix returns "bookings:" for "bookings:read".
func resourcePrefix(name string) (string, bool) {
	i := strings.LastIndexByte(name, ':')
	if i <= 0 {
		return "", false
	}
	return name[:i+1], true
}

func (c *Catalog) closure(start []string) Set {
	seen := map[string]bool{}
	stack := append([]string(nil), start...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		if i, ok := c.byName[n]; ok {
			stack = append(stack, c.entries[i].Implies...)
		}
	}
	out := make(Set, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	return normalize(out)
}

// Scopes returns the catalog's entries in the order they were given.
func (c *Catalog) Scopes() []Scope { return slices.Clone(c.entries) }

// Lookup returns the entry for name. For a wildcard ("bookings:*") it
// returns a synthesised entry describing what it grants.
func (c *Catalog) Lookup(name string) (Scope, bool) {
	if i, ok := c.byName[name]; ok {
		return c.entries[i], true
	}
	if g, ok := c.grants[name]; ok {
		return Scope{Name: name, Description: "Every " + strings.TrimSuffix(name, ":*") + " permission: " + strings.Join(g, ", "), Implies: g}, true
	}
	return Scope{}, false
}

// Issue phrases an error of [Parse], [NewSet] or [Catalog.Check] as the
// issue of a scopes field, for an error envelope's details or a form:
// "must all be known; unknown: bookings:reed", "must be valid scope tokens:
// empty scope token (…)". Any other error comes back as its text.
func Issue(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, ErrUnknown) && strings.HasPrefix(msg, ErrUnknown.Error()+": "):
		return "must all be known; unknown: " + msg[len(ErrUnknown.Error())+2:]
	case errors.Is(err, ErrInvalid) && strings.HasPrefix(msg, ErrInvalid.Error()+": "):
		return "must be valid scope tokens: " + msg[len(ErrInvalid.Error())+2:]
	}
	return msg
}

// Known reports whether tok is a catalog scope or a wildcard.
func (c *Catalog) Known(tok string) bool {
	_, ok := c.grants[tok]
	return ok
}

// Check returns an error wrapping [ErrUnknown] that names every token of s
// the catalog does not know, or nil.
func (c *Catalog) Check(s Set) error {
	var unknown []string
	for _, t := range s {
		if !c.Known(t) {
			unknown = append(unknown, t)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: %s", ErrUnknown, strings.Join(unknown, ", "))
	}
	return nil
}

// ParseKnown parses s with [Parse] and checks every token with
// [Catalog.Check].
func (c *Catalog) ParseKnown(s string) (Set, error) {
	set, err := Parse(s)
	if err != nil {
		return nil, err
	}
	return set, c.Check(set)
}

// Expand returns every catalog scope that granted grants, implications and
// wildcards applied. Unknown tokens are kept as they are.
func (c *Catalog) Expand(granted Set) Set {
	var out Set
	for _, t := range granted {
		if g, ok := c.grants[t]; ok {
			out = append(out, g...)
		} else {
			out = append(out, t)
		}
	}
	return normalize(out)
}

// Satisfies reports whether the granted tokens include required, directly,
// through an implication or through a wildcard. granted need not be sorted.
// It does not allocate.
func (c *Catalog) Satisfies(granted []string, required string) bool {
	if c == nil {
		return slices.Contains(granted, required)
	}
	sat, ok := c.satisfiers[required]
	if !ok {
		// Not a catalog scope (a wildcard, or unknown): only itself.
		return slices.Contains(granted, required)
	}
	for _, g := range granted {
		if _, found := slices.BinarySearch(sat, g); found {
			return true
		}
	}
	return false
}

// Narrow splits requested into the tokens that allowed satisfies (granted)
// and the rest (refused). Use it at grant time: an application or key asks
// for scopes, and gets only those it is allowed. A requested wildcard is
// granted only when allowed holds that wildcard.
func (c *Catalog) Narrow(requested, allowed Set) (granted, refused Set) {
	for _, t := range requested {
		if c.Satisfies(allowed, t) {
			granted = append(granted, t)
		} else {
			refused = append(refused, t)
		}
	}
	return granted, refused
}
