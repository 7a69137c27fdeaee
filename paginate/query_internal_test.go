package paginate

import "testing"

// FuzzParseQuery checks the allocation-free reading of a query string
// against url.ParseQuery's: the same pagination values and counts, the
// same other parameters, the same errors.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "per_page=25&page=1", "limit=5&limit=6", "page=2&x=1", "limit=%zz", "a;b", "page=1&&offset=", "per_page=+3", "offset"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, rest, err := parseQuery(raw)
		sq, srest, serr := slowQuery(raw)
		if (err == nil) != (serr == nil) {
			t.Fatalf("%q: errors differ: %v / %v", raw, err, serr)
		}
		if err != nil {
			return
		}
		if q != sq || rest != srest {
			t.Fatalf("%q: fast %+v %q, url.ParseQuery %+v %q", raw, q, rest, sq, srest)
		}
	})
}
