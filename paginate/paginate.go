// Package paginate reads pagination parameters and writes pagination
// headers, as TidyHQ's API does: collections accept limit or per_page, and
// offset or page, and answer with X-Pagination-Per-Page,
// X-Pagination-Current-Page, X-Pagination-Total-Pages and
// X-Pagination-Total-Entries, plus an RFC 8288 Link header.
//
// # Parameters
//
// [FromRequest] reads limit|per_page (default 25, at most 100) and
// offset|page (page is 1-based). Bad values, both names of an alias pair,
// or both offset and page are a 400 INVALID_REQUEST naming the parameter.
//
// An offset need not be a multiple of the page size: the rows served are
// exactly offset … offset+limit-1, and X-Pagination-Current-Page is the
// page that holds the first of them, floor(offset/limit)+1. The Link
// header's prev and next move by exactly one page size from the offset
// asked for, so a client walking the links never skips or repeats a row.
//
// # Totals
//
// When the total is unknown or too costly to count, pass -1: the two total
// headers and rel="last" are left out rather than guessed, and rel="next"
// is given while the page came back full.
//
// # Cursors
//
// For large or changing collections, [Cursors] encodes a keyset position
// (created_at, id) into an opaque cursor, HMAC-signed and bound to the
// query's filters and sort, and [Keyset] builds the SQL for it.
package paginate

import (
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/internal/headerval"
)

// Header names, exactly as the seed spells them.
const (
	HeaderPerPage      = "X-Pagination-Per-Page"
	HeaderCurrentPage  = "X-Pagination-Current-Page"
	HeaderTotalPages   = "X-Pagination-Total-Pages"
	HeaderTotalEntries = "X-Pagination-Total-Entries"
)

// Options configures [FromRequest]. The zero value means default 25,
// maximum 100, clamp.
type Options struct {
	// DefaultLimit is the page size when none is asked for. Default: 25.
	DefaultLimit int
	// MaxLimit is the largest page size. Default: 100.
	MaxLimit int
	// RejectOverMax answers 400 to a limit above MaxLimit instead of
	// clamping it.
	RejectOverMax bool
}

// Params is a parsed request for one page.
type Params struct {
	Limit  int
	Offset int
	// limitName and byPage remember how the client asked, so the Link
	// header answers in the same terms.
	limitName string
	byPage    bool
	// rest is the request's other query parameters, encoded once by
	// FromRequest for the Link header.
	rest string
}

// Page is the 1-based page that holds the first row served.
func (p Params) Page() int { return p.Offset/p.Limit + 1 }

// maxOffset bounds offsets so that offset+limit never overflows.
const maxOffset = math.MaxInt32

// FromRequest reads the pagination parameters of r.
func FromRequest(r *http.Request, o Options) (Params, error) {
	if o.DefaultLimit <= 0 {
		o.DefaultLimit = 25
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 100
	}
	q, rest, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		// url.Values drops what it cannot decode; a pagination parameter
		// silently ignored would page the wrong way.
		return Params{}, apierror.InvalidRequest("The query string is malformed", "query", "not valid percent-encoding")
	}
	p := Params{Limit: o.DefaultLimit, limitName: "limit"}

	name, raw, err := one(&q, "limit", "per_page")
	if err != nil {
		return Params{}, err
	}
	if name != "" {
		p.limitName = name
		n, err := strconv.Atoi(raw)
		switch {
		case err != nil:
			return Params{}, apierror.InvalidParam(name, "must be a whole number")
		case n < 1:
			return Params{}, apierror.InvalidParam(name, "must be at least 1")
		case n > o.MaxLimit && o.RejectOverMax:
			return Params{}, apierror.InvalidParam(name, "must be at most "+strconv.Itoa(o.MaxLimit))
		}
		p.Limit = min(n, o.MaxLimit)
	}

	name, raw, err = one(&q, "offset", "page")
	if err != nil {
		return Params{}, err
	}
	switch name {
	case "offset":
		n, err := strconv.Atoi(raw)
		switch {
		case err != nil:
			return Params{}, apierror.InvalidParam("offset", "must be a whole number")
		case n < 0:
			return Params{}, apierror.InvalidParam("offset", "must not be negative")
		case n > maxOffset:
			return Params{}, apierror.InvalidParam("offset", "is too large")
		}
		p.Offset = n
	case "page":
		n, err := strconv.Atoi(raw)
		switch {
		case err != nil:
			return Params{}, apierror.InvalidParam("page", "must be a whole number")
		case n < 1:
			return Params{}, apierror.InvalidParam("page", "must be at least 1 (pages count from 1)")
		case n > maxOffset/p.Limit:
			return Params{}, apierror.InvalidParam("page", "is too large")
		}
		p.Offset, p.byPage = (n-1)*p.Limit, true
	}
	p.rest = rest
	return p, nil
}

// pageParams are the parameters FromRequest reads.
var pageParams = [...]string{"limit", "per_page", "offset", "page"}

// pageQuery holds, for each of pageParams, its first value and how many
// times it was given.
type pageQuery struct {
	first [len(pageParams)]string
	count [len(pageParams)]int
}

func (q *pageQuery) get(name string) (string, int) {
	for i, n := range pageParams {
		if n == name {
			return q.first[i], q.count[i]
		}
	}
	return "", 0
}

// parseQuery reads the pagination parameters of a raw query, and encodes
// the others (sorted by key, as url.Values.Encode does) for the links. A
// query of pagination parameters alone, none escaped — the common case —
// is read without allocating; anything else goes through url.ParseQuery,
// whose errors (bad escapes, semicolons) it returns.
func parseQuery(raw string) (q pageQuery, rest string, err error) {
	for s := raw; s != ""; {
		var pair string
		pair, s, _ = strings.Cut(s, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		i := slices.Index(pageParams[:], k)
		if i < 0 || needsSlowPath(pair) {
			return slowQuery(raw)
		}
		if q.count[i] == 0 {
			q.first[i] = v
		}
		q.count[i]++
	}
	return q, "", nil
}

// needsSlowPath reports whether a pair holds a byte that url.ParseQuery
// treats specially: an escape, an encoded space, or a semicolon (an
// error). A loop: strings.ContainsAny builds its byte set on every call.
func needsSlowPath(pair string) bool {
	for i := 0; i < len(pair); i++ {
		switch pair[i] {
		case '%', '+', ';':
			return true
		}
	}
	return false
}

func slowQuery(raw string) (q pageQuery, rest string, err error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return q, "", err
	}
	for i, n := range pageParams {
		if v := values[n]; len(v) > 0 {
			q.first[i], q.count[i] = v[0], len(v)
		}
		delete(values, n)
	}
	return q, values.Encode(), nil
}

// one returns which of two alias parameters was given and its value; both,
// or either given twice, is an error.
func one(q *pageQuery, a, b string) (string, string, error) {
	va, na := q.get(a)
	vb, nb := q.get(b)
	switch {
	case na > 0 && nb > 0:
		return "", "", apierror.InvalidParam(b, "give either "+a+" or "+b+", not both")
	case na > 1:
		return "", "", apierror.InvalidParam(a, "give it once")
	case nb > 1:
		return "", "", apierror.InvalidParam(b, "give it once")
	case na == 1:
		return a, strings.TrimSpace(va), nil
	case nb == 1:
		return b, strings.TrimSpace(vb), nil
	}
	return "", "", nil
}

// SetHeaders writes the X-Pagination-* headers and the Link header for a
// page of n rows out of total (-1 when unknown). Links keep every other
// query parameter of r and name the limit and position as r did. That
// includes an access_token the client authenticated with, so a client
// that pages by following the links stays authenticated; gatehouse.Chain
// marks such responses Cache-Control: private, so that no shared cache
// keeps them.
//
// A browser script on another origin reads these headers only when the
// CORS layer that allows its origin lists them in
// Access-Control-Expose-Headers: give it [ExposedHeaders].
func SetHeaders(w http.ResponseWriter, r *http.Request, p Params, n, total int) {
	h := w.Header()
	// Every value this sets, their slices and their bytes share one
	// allocation: the numbers and the Link header are appended to v.buf
	// (or, past its end, to a larger copy), and each value is a frozen
	// view of bytes that are never written again.
	v := new(pageHeaders)
	b := v.buf[:0]
	set := func(i int, k, val string) {
		v.vals[i] = val
		h[k] = v.vals[i : i+1 : i+1]
	}
	num := func(i int, k string, x int) {
		start := len(b)
		b = strconv.AppendInt(b, int64(x), 10)
		set(i, k, headerval.Freeze(b[start:]))
	}
	num(0, HeaderPerPage, p.Limit)
	num(1, HeaderCurrentPage, p.Page())
	pages := 0
	if total >= 0 {
		pages = (total + p.Limit - 1) / p.Limit
		num(2, HeaderTotalPages, pages)
		num(3, HeaderTotalEntries, total)
	}

	start := len(b)
	path := (&url.URL{Path: r.URL.Path}).EscapedPath()
	add := func(rel string, offset int) {
		if len(b) > start {
			b = append(b, ", "...)
		}
		b = append(b, '<')
		b = p.appendLink(b, path, offset)
		b = append(b, `>; rel="`...)
		b = append(b, rel...)
		b = append(b, '"')
	}
	add("first", 0)
	if p.Offset > 0 {
		add("prev", max(0, p.Offset-p.Limit))
	}
	if (total >= 0 && p.Offset+p.Limit < total) || (total < 0 && n >= p.Limit) {
		add("next", p.Offset+p.Limit)
	}
	if total >= 0 {
		add("last", max(0, pages-1)*p.Limit)
	}
	set(4, "Link", headerval.Freeze(b[start:]))
}

// pageHeaders holds the values SetHeaders sets on one response. buf fits
// the numbers and the Link header of a typical collection path; a longer
// one moves on to a larger array.
type pageHeaders struct {
	vals [5]string
	buf  [256]byte
}

// ExposedHeaders returns the response headers this package sets, for the
// Access-Control-Expose-Headers of a CORS layer: without it, a script on
// another origin cannot read them. (Exposing them on every response would
// do nothing where no CORS layer allows the origin, and cost each response
// the bytes.)
func ExposedHeaders() []string {
	return []string{HeaderPerPage, HeaderCurrentPage, HeaderTotalPages, HeaderTotalEntries, "Link"}
}

// appendLink appends the escaped path and the request's query with the
// position set to offset: its other parameters first (as encoded by
// FromRequest), then the position and the limit under the names the
// client used.
func (p Params) appendLink(b []byte, escapedPath string, offset int) []byte {
	b = append(b, escapedPath...)
	b = append(b, '?')
	if p.rest != "" {
		b = append(b, p.rest...)
		b = append(b, '&')
	}
	if p.byPage && offset%p.Limit == 0 {
		b = append(b, "page="...)
		b = strconv.AppendInt(b, int64(offset/p.Limit+1), 10)
	} else {
		b = append(b, "offset="...)
		b = strconv.AppendInt(b, int64(offset), 10)
	}
	b = append(b, '&')
	b = append(b, p.limitName...)
	b = append(b, '=')
	return strconv.AppendInt(b, int64(p.Limit), 10)
}

// Slice returns the page of items that p asks for (empty past the end).
func Slice[T any](items []T, p Params) []T {
	if p.Offset >= len(items) {
		return []T{}
	}
	return items[p.Offset:min(len(items), p.Offset+p.Limit)]
}

// Placeholder styles of the SQL helpers.
type Placeholder int

// SQL placeholder styles: ? (MySQL, and SQLite without prepared
// statements), $n (PostgreSQL), and SQLite: ? with the LIMIT and OFFSET
// written "? + 0". SQLite plans with the value bound to a bare LIMIT
// parameter, so it re-prepares such a prepared statement on every
// execution (about 4× the cost of a small page query); as an expression
// the plan is kept.
const (
	Question Placeholder = iota
	Dollar
	SQLite
)

func (ph Placeholder) arg(n int) string {
	if ph == Dollar {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}

// limitArg is arg for a LIMIT or OFFSET value.
func (ph Placeholder) limitArg(n int) string {
	if ph == SQLite {
		return "? + 0"
	}
	return ph.arg(n)
}

// LimitOffset returns " LIMIT x OFFSET y" with placeholders numbered from
// next (the first unused $n), and the two arguments.
func (p Params) LimitOffset(ph Placeholder, next int) (string, []any) {
	return " LIMIT " + ph.limitArg(next) + " OFFSET " + ph.limitArg(next+1), []any{p.Limit, p.Offset}
}
