package paginate_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/paginate"
)

func ExampleCursors() {
	cursors, _ := paginate.NewCursors([]byte("a 32-byte server key, kept secret")) // one key for every instance
	type row struct {
		created time.Time
		id      string
	}
	var rows []row // in (created_at, id) order, as paginate.Keyset's SQL returns them
	for i := range 5 {
		rows = append(rows, row{time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC), fmt.Sprintf("b%d", i+1)})
	}
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		binding := paginate.Binding(r) // the filters a cursor is only valid for
		pos, p, err := cursors.FromCursorRequest(r, paginate.Options{}, binding)
		if err != nil {
			apierror.Write(w, r, err) // a tampered or foreign cursor is a 400
			return
		}
		var page []string
		var last *paginate.Position
		for _, b := range rows {
			after := pos == nil || b.created.After(pos.CreatedAt) || (b.created.Equal(pos.CreatedAt) && b.id > pos.ID)
			if after && len(page) < p.Limit {
				page = append(page, b.id)
				last = &paginate.Position{CreatedAt: b.created, ID: b.id}
			}
		}
		if len(page) < p.Limit {
			last = nil // the end: no next link
		}
		cursors.SetNextLink(w, r, last, binding)
		fmt.Fprintln(w, strings.Join(page, " "))
	})

	get := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		list.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		return rec
	}
	first := get("/v1/bookings?status=confirmed&limit=2")
	fmt.Print(first.Body.String())
	next := strings.TrimSuffix(strings.TrimPrefix(first.Header().Get("Link"), "<"), `>; rel="next"`)
	fmt.Print(get(next).Body.String())
	fmt.Println(get(strings.Replace(next, "status=confirmed", "status=cancelled", 1)).Code, "for the cursor under other filters")
	// Output:
	// b1 b2
	// b3 b4
	// 400 for the cursor under other filters
}
