package scope

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MaxLength bounds a scope string given to [Parse]; longer input is refused
// without further work.
const MaxLength = 4096

// ErrInvalid is wrapped by every syntax error of [Parse] and [Validate].
var ErrInvalid = errors.New("scope: invalid scope")

// Set is a set of scope tokens, kept sorted and without duplicates. The
// zero value is the empty set. Build one with [Parse] or [NewSet].
type Set []string

// Parse parses an RFC 6749 §3.3 scope string: scope tokens separated by
// single spaces, each of one or more characters %x21 / %x23-5B / %x5D-7E
// (printable ASCII but space, '"' and '\'). Duplicates collapse. Leading,
// trailing and repeated spaces are refused, as the RFC's grammar does; the
// empty string is the empty set.
func Parse(s string) (Set, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxLength {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLength)
	}
	n := strings.Count(s, " ") + 1
	out := make(Set, 0, n)
	for tok := range strings.SplitSeq(s, " ") {
		if err := Validate(tok); err != nil {
			return nil, err
		}
		out = append(out, tok)
	}
	return normalize(out), nil
}

// NewSet returns the set of the given tokens. It returns an error if a
// token is not valid scope syntax.
func NewSet(tokens ...string) (Set, error) {
	out := make(Set, 0, len(tokens))
	for _, t := range tokens {
		if err := Validate(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return normalize(out), nil
}

// MustSet is like [NewSet] but panics on invalid tokens. It is meant for
// constants in programs and tests.
func MustSet(tokens ...string) Set {
	s, err := NewSet(tokens...)
	if err != nil {
		panic(err)
	}
	return s
}

// Validate reports whether tok is one valid scope token.
func Validate(tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: empty scope token (scopes are separated by single spaces)", ErrInvalid)
	}
	if len(tok) > MaxLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLength)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Errorf("%w: %q contains a character not allowed in a scope", ErrInvalid, tok)
		}
	}
	return nil
}

func normalize(s Set) Set {
	slices.Sort(s)
	return slices.Compact(s)
}

// Has reports whether tok is in the set.
func (s Set) Has(tok string) bool {
	_, ok := slices.BinarySearch(s, tok)
	return ok
}

// String returns the set as an RFC 6749 scope string.
func (s Set) String() string { return strings.Join(s, " ") }

// Union returns the tokens in s or o.
func (s Set) Union(o Set) Set {
	out := make(Set, 0, len(s)+len(o))
	out = append(append(out, s...), o...)
	return normalize(out)
}

// Intersect returns the tokens in both s and o.
func (s Set) Intersect(o Set) Set {
	var out Set
	for _, t := range s {
		if o.Has(t) {
			out = append(out, t)
		}
	}
	return out
}

// Minus returns the tokens of s that are not in o.
func (s Set) Minus(o Set) Set {
	var out Set
	for _, t := range s {
		if !o.Has(t) {
			out = append(out, t)
		}
	}
	return out
}

// Strings returns the tokens as a plain slice (the same backing array).
func (s Set) Strings() []string { return []string(s) }
