package paginate_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tomnomnom/linkheader"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/paginate"
)

func req(q string) *http.Request { return httptest.NewRequest("GET", "/v1/customers?"+q, nil) }

func TestFromRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		q             string
		opts          paginate.Options
		limit, offset int
		field         string
	}{
		{q: "", limit: 25, offset: 0},
		{q: "limit=10", limit: 10},
		{q: "per_page=10", limit: 10},
		{q: "limit=10&offset=30", limit: 10, offset: 30},
		{q: "per_page=10&page=3", limit: 10, offset: 20},
		{q: "page=2", limit: 25, offset: 25},
		{q: "offset=7", limit: 25, offset: 7},
		{q: "limit=1000", limit: 100},
		{q: "limit=1000", opts: paginate.Options{RejectOverMax: true}, field: "limit"},
		{q: "limit=5", opts: paginate.Options{DefaultLimit: 2, MaxLimit: 4}, limit: 4},
		{q: "", opts: paginate.Options{DefaultLimit: 2}, limit: 2},
		{q: "limit=abc", field: "limit"},
		{q: "per_page=-1", field: "per_page"},
		{q: "limit=0", field: "limit"},
		{q: "limit=1.5", field: "limit"},
		{q: "offset=-3", field: "offset"},
		{q: "offset=x", field: "offset"},
		{q: "page=0", field: "page"},
		{q: "page=-1", field: "page"},
		{q: "page=one", field: "page"},
		{q: "limit=5&per_page=5", field: "per_page"},
		{q: "offset=5&page=2", field: "page"},
		{q: "limit=5&limit=6", field: "limit"},
		{q: "page=1&page=2", field: "page"},
		{q: "offset=99999999999999999999", field: "offset"},
		{q: "page=99999999999", field: "page"},
		{q: "page=%zz", field: "query"},
		{q: "limit=5&x=%", field: "query"},
	}
	for _, tc := range cases {
		p, err := paginate.FromRequest(req(tc.q), tc.opts)
		if tc.field != "" {
			require.Error(t, err, tc.q)
			e := apierror.From(err)
			assert.Equal(t, 400, e.Status, tc.q)
			assert.Equal(t, "INVALID_REQUEST", e.Code, tc.q)
			assert.Equal(t, tc.field, e.Details.(apierror.FieldIssue).Field, tc.q)
			continue
		}
		require.NoError(t, err, tc.q)
		assert.Equal(t, tc.limit, p.Limit, tc.q)
		assert.Equal(t, tc.offset, p.Offset, tc.q)
	}
}

func links(t *testing.T, h http.Header) map[string]url.Values {
	t.Helper()
	out := map[string]url.Values{}
	for _, l := range linkheader.Parse(h.Get("Link")) {
		u, err := url.Parse(l.URL)
		require.NoError(t, err)
		assert.Equal(t, "/v1/customers", u.Path)
		out[l.Rel] = u.Query()
	}
	return out
}

// pageHeaders serves SetHeaders for query q (n rows of total) and checks
// the four X-Pagination-* values.
func pageHeaders(t *testing.T, q string, n, total int, perPage, current, pages, entries string) http.Header {
	t.Helper()
	r := req(q)
	p, err := paginate.FromRequest(r, paginate.Options{})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	paginate.SetHeaders(w, r, p, n, total)
	h := w.Header()
	assert.Equal(t, perPage, h.Get("X-Pagination-Per-Page"))
	assert.Equal(t, current, h.Get("X-Pagination-Current-Page"))
	assert.Equal(t, pages, h.Get("X-Pagination-Total-Pages"))
	assert.Equal(t, entries, h.Get("X-Pagination-Total-Entries"))
	return h
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	// The seed's example: 247 entries, 25 a page, page 2.
	h := pageHeaders(t, "per_page=25&page=2&status=active", 25, 247, "25", "2", "10", "247")
	assert.Empty(t, h.Values("Access-Control-Expose-Headers"), "exposing headers is the CORS layer's job")
	for _, name := range paginate.ExposedHeaders() {
		assert.NotEmpty(t, h.Get(name), "ExposedHeaders lists what SetHeaders sets: "+name)
	}
	l := links(t, h)
	require.Len(t, l, 4)
	for rel, page := range map[string]string{"first": "1", "prev": "1", "next": "3", "last": "10"} {
		assert.Equal(t, page, l[rel].Get("page"), rel)
		assert.Equal(t, "25", l[rel].Get("per_page"), rel)
		assert.Equal(t, "active", l[rel].Get("status"), "other parameters are kept: "+rel)
		assert.Empty(t, l[rel].Get("limit"), rel)
	}
}

func TestHeadersEdges(t *testing.T) {
	t.Parallel()
	cases := []struct {
		q        string
		n, total int
		current  string
		rels     []string
		offsets  map[string]string
	}{
		{q: "limit=10", n: 10, total: 35, current: "1", rels: []string{"first", "next", "last"}, offsets: map[string]string{"next": "10", "last": "30"}},
		{q: "limit=10&offset=15", n: 10, total: 35, current: "2", rels: []string{"first", "prev", "next", "last"}, offsets: map[string]string{"prev": "5", "next": "25"}},
		{q: "limit=10&offset=30", n: 5, total: 35, current: "4", rels: []string{"first", "prev", "last"}},
		{q: "limit=10&offset=100", n: 0, total: 35, current: "11", rels: []string{"first", "prev", "last"}},
		{q: "limit=10", n: 0, total: 0, current: "1", rels: []string{"first", "last"}},
		{q: "limit=10&offset=10", n: 10, total: -1, current: "2", rels: []string{"first", "prev", "next"}},
		{q: "limit=10&offset=20", n: 3, total: -1, current: "3", rels: []string{"first", "prev"}},
	}
	for _, tc := range cases {
		r := req(tc.q)
		p, err := paginate.FromRequest(r, paginate.Options{})
		require.NoError(t, err)
		w := httptest.NewRecorder()
		paginate.SetHeaders(w, r, p, tc.n, tc.total)
		assert.Equal(t, tc.current, w.Header().Get("X-Pagination-Current-Page"), tc.q)
		l := links(t, w.Header())
		var rels []string
		for _, rel := range []string{"first", "prev", "next", "last"} {
			if _, ok := l[rel]; ok {
				rels = append(rels, rel)
			}
		}
		assert.Equal(t, tc.rels, rels, tc.q)
		for rel, off := range tc.offsets {
			assert.Equal(t, off, l[rel].Get("offset"), tc.q+" "+rel)
		}
		if tc.total < 0 {
			assert.Empty(t, w.Header().Get("X-Pagination-Total-Pages"), "unknown totals are not guessed")
			assert.Empty(t, w.Header().Get("X-Pagination-Total-Entries"))
		}
	}
}

// TestHeadersLongerThanTheBuffer: a Link header that outgrows SetHeaders'
// own buffer moves to a larger one without disturbing the values already
// written into the first.
func TestHeadersLongerThanTheBuffer(t *testing.T) {
	t.Parallel()
	filter := strings.Repeat("ab", 200)
	h := pageHeaders(t, "limit=10&offset=20&q="+filter, 10, 123456789, "10", "3", "12345679", "123456789")
	assert.Greater(t, len(h.Get("Link")), 1024)
	l := links(t, h)
	require.Len(t, l, 4)
	for rel, off := range map[string]string{"first": "0", "prev": "10", "next": "30", "last": "123456780"} {
		assert.Equal(t, off, l[rel].Get("offset"), rel)
		assert.Equal(t, "10", l[rel].Get("limit"), rel)
		assert.Equal(t, filter, l[rel].Get("q"), rel)
	}
}

func TestSlice(t *testing.T) {
	t.Parallel()
	items := []int{1, 2, 3, 4, 5}
	p, _ := paginate.FromRequest(req("limit=2&offset=3"), paginate.Options{})
	assert.Equal(t, []int{4, 5}, paginate.Slice(items, p))
	p, _ = paginate.FromRequest(req("limit=2&offset=9"), paginate.Options{})
	got := paginate.Slice(items, p)
	assert.NotNil(t, got)
	assert.Empty(t, got, "past the end: an empty list, not null")
	b, _ := json.Marshal(got)
	assert.Equal(t, "[]", string(b))
	sqlText, args := p.LimitOffset(paginate.Dollar, 3)
	assert.Equal(t, " LIMIT $3 OFFSET $4", sqlText)
	assert.Equal(t, []any{2, 9}, args)
	sqlText, _ = p.LimitOffset(paginate.Question, 3)
	assert.Equal(t, " LIMIT ? OFFSET ?", sqlText)
	sqlText, _ = p.LimitOffset(paginate.SQLite, 3)
	assert.Equal(t, " LIMIT ? + 0 OFFSET ? + 0", sqlText)
}

func FuzzFromRequest(f *testing.F) {
	for _, s := range []string{"limit=10&offset=5", "per_page=3&page=2", "page=0", "limit=abc", "offset=-1&limit=1", "a=b&page=99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest("GET", "/x", nil)
		r.URL.RawQuery = q
		p, err := paginate.FromRequest(r, paginate.Options{})
		if err != nil {
			if e := apierror.From(err); e.Status != 400 {
				t.Fatalf("status %d for %q", e.Status, q)
			}
			return
		}
		if p.Limit < 1 || p.Limit > 100 || p.Offset < 0 || p.Page() < 1 {
			t.Fatalf("bad params %+v from %q", p, q)
		}
		w := httptest.NewRecorder()
		paginate.SetHeaders(w, r, p, p.Limit, 1000)
		if !strings.Contains(w.Header().Get("Link"), `rel="first"`) {
			t.Fatal("no first link")
		}
	})
}
